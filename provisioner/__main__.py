"""`python -m provisioner` is the `medcell` command."""

from provisioner.cli.commands import main

main()
