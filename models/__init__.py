"""The shipped demo model (``demo/vis_synthetic.pth``), in the package as ``queryinst.models``
(found with ``queryinst.resources``)."""
