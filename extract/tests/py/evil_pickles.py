#!/usr/bin/env python3
"""Checkpoints that would run a command when unpickled by plain pickle.load:
`torch.load(weights_only=False)`'s risk, which extract and classify must refuse.

    evil_pickles.py OUT_DIR MARKER

Writes OUT_DIR/evil-zip.pth (PyTorch's zip layout) and OUT_DIR/evil-legacy.pth
(the older format, the payload in the first pickle); unpickling either one
plainly would create the file MARKER. Also OUT_DIR/bomb.pth: a real
checkpoint's pickle beside a storage entry that deflates 300 MB of zeros
into a few hundred kilobytes (a zip bomb), when FIXTURE.pth is given.

    evil_pickles.py OUT_DIR MARKER [FIXTURE.pth]"""
import os
import pickle
import sys
import zipfile


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def main():
    out, marker = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    body = pickle.dumps({"conv1.weight": Payload(marker)}, protocol=2)
    with zipfile.ZipFile(os.path.join(out, "evil-zip.pth"), "w") as z:
        z.writestr("evil/data.pkl", body)
        z.writestr("evil/byteorder", "little")
    with open(os.path.join(out, "evil-legacy.pth"), "wb") as f:
        f.write(pickle.dumps(Payload(marker), protocol=2))
    if len(sys.argv) > 3:
        with zipfile.ZipFile(sys.argv[3]) as src, \
                zipfile.ZipFile(os.path.join(out, "bomb.pth"), "w", zipfile.ZIP_DEFLATED) as z:
            for name in src.namelist():
                data = src.read(name)
                if name.endswith("/data/0"):
                    data = bytes(300 << 20)
                z.writestr(name, data)


if __name__ == "__main__":
    main()
