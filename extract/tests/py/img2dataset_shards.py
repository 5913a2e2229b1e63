#!/usr/bin/env python3
"""Shards written by img2dataset itself from an image folder
(`SRC/<class>/<image>`): the folder is served by Python's http.server on
127.0.0.1 (a free port, stopped by the pid this script started), a URL
list names every image with its class as the `label` column, and
img2dataset downloads it into webdataset shards, the original bytes kept
(`--disable_all_reencoding`), the label saved in each sample's `.json`.

    img2dataset_shards.py SRC OUT [--per-shard 40]

Prints {"shards": [paths], "samples": n} as JSON.
"""
import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
IMG2DATASET = os.path.join(ROOT, ".venv", "img2dataset", "bin", "img2dataset")

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("out")
ap.add_argument("--per-shard", type=int, default=40)
a = ap.parse_args()

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=a.src,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    os.makedirs(a.out, exist_ok=True)
    urls = os.path.join(a.out, "urls.csv")
    n = 0
    with open(urls, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["url", "label"])
        for c in sorted(os.listdir(a.src)):
            for name in sorted(os.listdir(os.path.join(a.src, c))):
                w.writerow([f"http://127.0.0.1:{port}/{urllib.parse.quote(c)}/{urllib.parse.quote(name)}", c])
                n += 1
    shards = os.path.join(a.out, "shards")
    subprocess.run([IMG2DATASET, "--url_list", urls, "--input_format", "csv", "--url_col", "url",
                    "--save_additional_columns", '["label"]', "--output_format", "webdataset",
                    "--disable_all_reencoding", "True", "--output_folder", shards, "--processes_count", "1",
                    "--thread_count", "4", "--number_sample_per_shard", str(a.per_shard), "--enable_wandb", "False"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
finally:
    server.terminate()
    server.wait()
tars = sorted(os.path.join(shards, f) for f in os.listdir(shards) if f.endswith(".tar"))
print(json.dumps({"shards": tars, "folder": shards, "samples": n}))
