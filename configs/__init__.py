"""The YAML configs, shipped in the package as ``queryinst.configs`` (found with ``queryinst.resources``)."""
