"""The ``modelops`` subcommands, each parser beside its handler (DVC's ``dvc/commands/``).

One module per group of related commands; each has ``add_parsers(sub, shared)``, which
adds its subparsers to ``sub`` with the shared parent parsers (``options.Parents``), and
``cmd_*`` handlers that parse nothing, call ``modelops.api`` (imported when the handler
runs, so that ``modelops --help`` loads no numpy, pandas, scikit-learn or dvc), print, and
return an exit code. ``modelops.cli.main`` is the one place errors become exit codes.

    registry     register, promote, rollback, retire    (write registry tags)
    checkout     checkout, get                          (a version's bytes, verified)
    show         list, show, history                    (read the registry)
    experiments  exp best, report, merge
    tuning       tune                                   (Optuna; trials are DVC experiments)
    serving      serve, predict
    monitoring   monitor, make-batch, logs export
    verify       verify
    remote       publish, gc                            (the DVC remote)
    ui           ui                                     (web pages of the registry)
    options      parent parsers and the version options several commands share
    output       terminal-safe text, tables, --json
"""
