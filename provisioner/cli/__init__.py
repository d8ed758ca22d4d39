"""The operator's `medcell` command: click commands over the facility, stack and backup operations.

Runs on the operator's host only; nothing here is shipped in an image.
"""
