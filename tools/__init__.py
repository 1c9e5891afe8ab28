"""The command-line tools, installed as ``queryinst.tools``: each module has ``main(argv) -> int``; the
``queryinst`` command runs them as subcommands (``queryinst/__main__.py``), and each file also runs as a
script (``python tools/track_video.py ...``)."""
