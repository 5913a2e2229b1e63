#!/usr/bin/env bash
# Downloads the MindSpore tutorial's wolves-vs-dogs dataset (120 train + 30
# val images per class) and unpacks it to DEST/Canidae/{train,val}/{dogs,wolves}.
# Needs internet access.
#
#   scripts/fetch-canidae.sh [DEST]      (default: data)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-data}
url=https://mindspore-website.obs.cn-north-4.myhuaweicloud.com/notebook/datasets/intermediate/Canidae_data.zip
if [ -d "$dest/Canidae/train" ] && [ -d "$dest/Canidae/val" ]; then
    echo "fetch-canidae: $dest/Canidae is already there" >&2
    exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.canidae.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --connect-timeout 15 --max-time 600 -o "$tmp/Canidae_data.zip" "$url"
.venv/bin/python -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$tmp/Canidae_data.zip" "$tmp/x"
# The archive's top folder name has varied; take the one holding train/ and val/.
src=$(dirname "$(find "$tmp/x" -type d -name train | head -1)")
[ -d "$src/train" ] && [ -d "$src/val" ] || { echo "fetch-canidae: unexpected archive layout" >&2; exit 1; }
rm -rf "$dest/Canidae"
mv "$src" "$dest/Canidae"
echo "fetch-canidae: unpacked to $dest/Canidae" >&2
