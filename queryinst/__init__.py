"""QueryInst-VIS toolkit: ``queryinst.image`` (QueryInst), ``queryinst.vis`` (QueryInst-VIS),
``queryinst.tracking`` (model-independent online tracker)."""

__version__ = "0.1.0"
