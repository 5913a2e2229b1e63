"""The tests' independent S3 client: pyarrow's S3 file system, pointed at
the server scripts/s3-server.sh started (the AWS_* variables).

    s3.py mb BUCKET                 creates a bucket
    s3.py put LOCAL BUCKET/KEY      uploads a file, or a folder's files below KEY/
    s3.py ls BUCKET/PREFIX          prints [[key, size], ...] of every object below
    s3.py features BUCKET/PREFIX    reads the feature-file parts below (or the one
                                    object) with pyarrow, in name order, and prints
                                    {"paths", "labels", "columns": {name: sha256 of
                                    the float32 values}, "files"}
"""
import hashlib
import json
import os
import sys

import pyarrow.fs as fs
import pyarrow.parquet as pq


def client():
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    scheme, host = endpoint.split("://", 1)
    return fs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=host,
        scheme=scheme,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        allow_bucket_creation=True,
    )


def objects(s3, prefix):
    info = s3.get_file_info(prefix)
    if info.type == fs.FileType.File:
        return [info]
    if info.type == fs.FileType.NotFound:
        return []
    found = s3.get_file_info(fs.FileSelector(prefix, recursive=True))
    return sorted((i for i in found if i.type == fs.FileType.File), key=lambda i: i.path)


def main():
    cmd, *args = sys.argv[1:]
    s3 = client()
    if cmd == "mb":
        s3.create_dir(args[0])
    elif cmd == "put":
        local, dest = args
        files = [(local, dest)] if os.path.isfile(local) else [
            (os.path.join(d, f), dest.rstrip("/") + "/" + os.path.relpath(os.path.join(d, f), local))
            for d, _, fs_ in os.walk(local) for f in fs_
        ]
        for src, key in files:
            with open(src, "rb") as f, s3.open_output_stream(key) as out:
                out.write(f.read())
    elif cmd == "ls":
        print(json.dumps([[i.path, i.size] for i in objects(s3, args[0])]))
    elif cmd == "features":
        files = [i.path for i in objects(s3, args[0]) if i.path.endswith(".parquet")]
        tables = [pq.read_table(p, filesystem=s3) for p in files]
        meta = tables[0].schema.metadata
        names = list(json.loads(meta[b"extract.layers"]))
        out = {"files": [p.rsplit("/", 1)[1] for p in files], "paths": [], "labels": [], "columns": {}}
        for t in tables:
            out["paths"] += t.column("path").to_pylist()
            out["labels"] += t.column("label").to_pylist()
        for name in names:
            h = hashlib.sha256()
            for t in tables:
                h.update(t.column(name).combine_chunks().flatten().to_numpy().astype("<f4").tobytes())
            out["columns"][name] = h.hexdigest()
        print(json.dumps(out))
    else:
        sys.exit(f"s3.py: unknown command {cmd}")


main()
