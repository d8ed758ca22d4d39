"""The medcell provisioner: the `medcell` CLI and the operations behind it."""
