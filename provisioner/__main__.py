"""`python -m provisioner` is the `medcell` command."""

from provisioner.cli import main

main()
