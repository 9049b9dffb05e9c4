"""The data-access layer: the only code that knows pynamodb, conditions and transactions.

    records.py     typed records (Head, Version, Upload, LegacyAlias, NamespaceClaim, Token,
                   TokenIndex, BuildWatch), each converted to and from its item there
    table.py       the pynamodb model of the one table, bound lazily to the configuration
    resources.py   heads, versions, uploads: reads, listings, commits, conditional changes
    builds.py      executor image build statuses and the watches on builds in flight
    legacy.py      legacy executor aliases and the wrong secrets counted per name
    accounts.py    namespace claims
    tokens.py      personal access tokens and each account's token index
    reconciler.py  the reconciler's cursor

The service imports records freely (they import nothing heavy); the operation modules load
pynamodb, so modules on app.py's import path import them on first use.
"""
