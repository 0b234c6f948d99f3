"""Versions and stages on annotated git tags, in GTO's grammar.

``model@v1.2.0`` registers a version, ``model#prod#3`` assigns a stage,
``model@v1.2.0!`` retires (deregisters) a version. Tag names come from GTO's
own ``name_tag``, versions from its ``SemVer``, names are checked with its
validator, so ``gto show`` and ``dvc artifacts get`` read what we write.

Along GTO's seams: ``state`` is the pure read model (events, stage holders, undo
stacks, name and version checks), ``tags`` writes tags (message format, atomic
creation with retry, the lock, the one-second spacing), ``gate`` is the promotion
policy and ``ops`` the operations. The names below are the package's public face.
"""

from modelops.registry.gate import Gate, gate, metrics_at
from modelops.registry.ops import promote, register, retire, rollback
from modelops.registry.state import (
    ASSIGN,
    DEPRECATE,
    DEREGISTER,
    REGISTER,
    UNASSIGN,
    Event,
    State,
    VersionInfo,
    check_name,
    check_stage,
    check_version,
    default_name,
    iso,
    need_version,
    next_version,
    read_events,
    resolve,
    split_ref,
    state,
)

__all__ = [
    "ASSIGN",
    "DEPRECATE",
    "DEREGISTER",
    "REGISTER",
    "UNASSIGN",
    "Event",
    "Gate",
    "State",
    "VersionInfo",
    "check_name",
    "check_stage",
    "check_version",
    "default_name",
    "gate",
    "iso",
    "metrics_at",
    "need_version",
    "next_version",
    "promote",
    "read_events",
    "register",
    "resolve",
    "retire",
    "rollback",
    "split_ref",
    "state",
]
