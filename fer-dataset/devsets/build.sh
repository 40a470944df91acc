#!/usr/bin/env bash
# Builds a dev set of real photos from its list: copies each listed image of a checkout of the
# source repository into OUT, after checking its SHA-256, so the set is the same everywhere.
# Nothing is downloaded here and nothing is written outside OUT.
#
#   fer-dataset/devsets/build.sh LIST SOURCE_IMAGES_FOLDER OUT
#   e.g. fer-dataset/devsets/build.sh fer-dataset/devsets/muxspace_lfw.csv facial_expressions/images ../devsets/muxspace_lfw
#
# LIST is a CSV (see fer-dataset/devsets/README.md) with the header `label,file,sha256` (photos
# with expression labels: copied into OUT/<class>/) or `file,sha256,boxes` (photos with face
# boxes: copied into OUT/, the list beside them as OUT/boxes.csv).
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "usage: $0 LIST SOURCE_IMAGES_FOLDER OUT" >&2
    exit 2
fi
list=$1 src=$2 out=$3
[ -f "$list" ] || { echo "error: $list: no such list" >&2; exit 1; }
[ -d "$src" ] || { echo "error: $src: no such folder (check out the source repository first)" >&2; exit 1; }
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "error: $out exists and is not empty: choose another OUT or remove it" >&2
    exit 1
fi
header=$(head -n1 "$list")
case "$header" in
    label,file,sha256) boxes=0 ;;
    file,sha256,boxes) boxes=1 ;;
    *) echo "error: $list: expected the header label,file,sha256 or file,sha256,boxes" >&2; exit 1 ;;
esac
n=0 bad=0
while IFS=, read -r a b c; do
    if [ "$boxes" = 1 ]; then
        file=$a sum=$b dest=$out
        case "$c" in *[!0-9\ \;]*) echo "error: $list: $file: boxes must be 'x y w h' separated by ';', got '$c'" >&2; exit 1 ;; esac
    else
        label=$a file=$b sum=$c dest=$out/$a
        case "$label" in angry|disgust|fear|happy|neutral|sad|surprise) ;; *)
            echo "error: $list: unknown label '$label' for $file" >&2; exit 1 ;;
        esac
    fi
    case "$file" in */*|.*|'') echo "error: $list: '$file' is not a plain file name" >&2; exit 1 ;; esac
    if [ ! -f "$src/$file" ]; then
        echo "missing: $src/$file" >&2; bad=$((bad + 1)); continue
    fi
    got=$(sha256sum "$src/$file" | cut -d' ' -f1)
    if [ "$got" != "$sum" ]; then
        echo "changed: $src/$file (SHA-256 $got, listed $sum)" >&2; bad=$((bad + 1)); continue
    fi
    mkdir -p "$dest"
    cp "$src/$file" "$dest/$file"
    n=$((n + 1))
done < <(tail -n +2 "$list")
if [ "$boxes" = 1 ]; then
    mkdir -p "$out"
    cp "$list" "$out/boxes.csv"
fi
echo "$n images in $out"
if [ "$bad" -gt 0 ]; then
    echo "error: $bad listed image(s) missing or changed: the set is not the listed one" >&2
    exit 1
fi
