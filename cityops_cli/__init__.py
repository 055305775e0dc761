"""The `cityops` command: the composition root, the one package that knows every other.

main.py names each subcommand and the package that owns it, and imports only the one
that runs; db.py, pki.py, serve.py and bench.py are the commands of the core itself.
Nothing imports this package (docs/architecture.md).
"""
