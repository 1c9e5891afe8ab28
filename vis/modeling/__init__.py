"""The QueryInst-VIS network: ``model`` (QueryInstVIS, FrameDetections), ``track_head``, ``losses`` (the
MaskTrack R-CNN track loss), ``build`` (config -> model, and ``load_vis_model``, the one model loader of
the tools) and ``export`` (ONNX / TorchScript of the per-frame network, ``OnnxQueryInstVIS``)."""
