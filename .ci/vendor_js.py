"""Vendor the charting JavaScript the web pages use (`make vendor-js`): Vega, Vega-Lite and
vega-embed, pinned by version and by the npm registry's sha512 of each package tarball.

The pages must draw offline, so the minified builds ship inside the package
(src/modelops/ui/static/). This script is the only way they change: it runs `npm pack`,
refuses a tarball whose sha512 is not the pinned one, extracts the build and the licence,
and records every file's sha256 in VENDOR.json, which tests/test_ui.py re-checks. Vega-Lite
5 matches the `$schema` of DVC's plot templates (dvc-render), so no version warning is logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "src/modelops/ui/static"
PACKAGES = {
    # name: (version, npm dist.integrity of the tarball, file in package/build/)
    "vega": (
        "5.33.1",
        "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        "vega.min.js",
    ),
    "vega-lite": (
        "5.23.0",
        "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        "vega-lite.min.js",
    ),
    "vega-embed": (
        "6.29.0",
        "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        "vega-embed.min.js",
    ),
}


def main() -> int:
    STATIC.mkdir(parents=True, exist_ok=True)
    record = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, integrity, build) in PACKAGES.items():
            out = subprocess.run(
                ["npm", "pack", f"{name}@{version}", "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
            tarball = (Path(tmp) / out).read_bytes()
            got = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
            if got != integrity:
                print(f"error: {name}@{version}: tarball sha512 {got} is not the pinned one")
                return 1
            with tarfile.open(Path(tmp) / out) as tar:
                js = tar.extractfile(f"package/build/{build}").read()
                names = tar.getnames()
                found = [n for n in ("package/LICENSE", "package/LICENSE.md") if n in names]
                licence = found[0] if found else None
                text = tar.extractfile(licence).read() if licence else None
            (STATIC / build).write_bytes(js)
            files = {build: hashlib.sha256(js).hexdigest()}
            if text is not None:  # vega 5.33.1's tarball has none: vega-lite's (same lab) covers it
                (STATIC / f"LICENSE.{name}").write_bytes(text)
                files[f"LICENSE.{name}"] = hashlib.sha256(text).hexdigest()
            record[name] = {"version": version, "integrity": integrity, "files": files}
    (STATIC / "VENDOR.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"vendored {', '.join(f'{n}@{v[0]}' for n, v in PACKAGES.items())} into {STATIC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
