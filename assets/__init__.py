"""The sample clip (``sample.mp4``), shipped in the package as ``queryinst.assets`` (found with
``queryinst.resources``)."""
