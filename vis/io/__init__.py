"""Video input and output: ``reader`` (video files, image folders and globs as a stream of frames),
``writer`` (atomic video writing), ``capture`` (cameras and streams, newest-frame capture, live recording)
and ``common`` (what they share: ``Frame``, frame checks and conversions, quiet OpenCV)."""
