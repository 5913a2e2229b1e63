"""Files the scripts write appear whole or not at all, as the tools' own
outputs do (featurefile::atomic): the content goes to a temporary file
beside the destination, renamed onto it only when it is complete."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def replacing(dest):
    """Yields a temporary path beside `dest` to write; when the block ends
    normally the file gets the usual 0644 and replaces `dest`, else it is
    removed."""
    folder = os.path.dirname(os.path.abspath(dest))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(dest) + ".", suffix=".partial")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
