#!/usr/bin/env bash
# Build the small OpenCV wheel the release bundle ships instead of PyPI's opencv-python-headless.
#
# Why: PyPI's wheel is 152 MB installed (a 74 MB cv2 module with every OpenCV module in it, a
# 39 MB OpenBLAS it cannot load without, and FFmpeg with every codec and TLS), which alone kept
# the bundle above 250 MB. The app uses four OpenCV modules: core, imgproc (resize, contours,
# polygons, drawing), imgcodecs (PNG and JPEG writing) and videoio (reading video through
# FFmpeg). This builds exactly those, against a static FFmpeg reduced to reading video files:
#   demuxers  mov/mp4, matroska/webm, avi, mpegts, mpegps, flv, raw h264/hevc/m4v/mjpeg
#   decoders  h264, hevc, mpeg4, mpeg1/2, h263, msmpeg4, vp8, vp9, mjpeg   (no AV1: FFmpeg 5.1
#             has no software AV1 decoder of its own; PyPI's wheel bundles libaom, yet its
#             FFmpeg picks the hardware-only native decoder, so it reads no AV1 frame on a CPU)
#   no encoders, muxers, network, devices or filters.
#
# Output: $OUT/wheel/opencv_python_headless-<version>-*.whl (build_linux.sh installs it when
# OPENCV_WHEEL names it). Sources are fetched from Debian's archive and PyPI and checked against the
# sha256 below; FFMPEG_TARBALL / OPENCV_SDIST name local copies instead (offline builds).
# Needs: a C/C++ toolchain, cmake, nasm, pkg-config. About 6 min on 2 cores (Zen 5).
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) stops the script too
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-build/opencv-min}
JOBS=${JOBS:-$(nproc)}

FFMPEG_VERSION=5.1.9
# Upstream's signed release tarball. The checksum is that of the copy in Debian's archive
# (ffmpeg_$FFMPEG_VERSION.orig.tar.xz, upstream's signature beside it), checked here; Debian's
# pool drops it once a newer bookworm release supersedes it, hence the list: the first URL
# whose file matches the checksum wins.
FFMPEG_URLS="https://ffmpeg.org/releases/ffmpeg-$FFMPEG_VERSION.tar.xz
https://deb.debian.org/debian/pool/main/f/ffmpeg/ffmpeg_$FFMPEG_VERSION.orig.tar.xz"
FFMPEG_SHA256=d9b593bb2ba93d4b50f74177e0cdcd41747e708596367deed0c30348a71dd176
OPENCV_VERSION=4.12.0.88
OPENCV_URLS=https://files.pythonhosted.org/packages/a4/63/6861102ec149c3cd298f4d1ea7ce9d6adbc7529221606ff1dab991a19adb/opencv-python-headless-$OPENCV_VERSION.tar.gz
OPENCV_SHA256=cfdc017ddf2e59b6c2f53bc12d74b6b0be7ded4ec59083ea70763921af2b6c09

mkdir -p "$OUT/src"
OUT=$(cd "$OUT" && pwd)
PREFIX=$OUT/ffmpeg

fetch() {  # fetch NAME SHA256 LOCAL_COPY URL... -> the path of a file with that checksum
  local name=$1 sha=$2 local_copy=$3 file url
  shift 3
  file=$OUT/src/$name
  matches() { echo "$sha  $1" | sha256sum -c --quiet - >/dev/null 2>&1; }
  if [ -n "$local_copy" ]; then
    cp "$local_copy" "$file.part" && mv "$file.part" "$file" || return 1
  fi
  if [ -f "$file" ] && ! matches "$file"; then
    echo "discarding $file: not the expected file (sha256 $sha)" >&2
    rm -f "$file"
  fi
  for url in "$@"; do
    [ -f "$file" ] && break
    if curl -fsSL -o "$file.part" "$url" && matches "$file.part"; then
      mv "$file.part" "$file"
    else
      echo "not usable: $url (download failed or checksum differs)" >&2
      rm -f "$file.part"
    fi
  done
  if [ ! -f "$file" ]; then
    echo "no source of $name with sha256 $sha" >&2
    return 1
  fi
  echo "$file"
}

start=$(date +%s)
echo "== FFmpeg $FFMPEG_VERSION (static, decoding only)"
# shellcheck disable=SC2086  # the URL lists split on white space on purpose
ffmpeg_tar=$(fetch "ffmpeg-$FFMPEG_VERSION.tar.xz" "$FFMPEG_SHA256" "${FFMPEG_TARBALL:-}" $FFMPEG_URLS)
rm -rf "$OUT/src/ffmpeg-$FFMPEG_VERSION" "$PREFIX"
tar -C "$OUT/src" -xJf "$ffmpeg_tar"
(
  cd "$OUT/src/ffmpeg-$FFMPEG_VERSION"
  ./configure --prefix="$PREFIX" --enable-pic --enable-static --disable-shared \
    --disable-everything --disable-autodetect --disable-programs --disable-doc \
    --disable-debug --disable-network --disable-avdevice --disable-avfilter --disable-postproc \
    --enable-avcodec --enable-avformat --enable-avutil --enable-swscale --enable-swresample \
    --enable-protocol=file \
    --enable-demuxer=mov,matroska,avi,mpegts,mpegps,flv,h264,hevc,m4v,mjpeg \
    --enable-decoder=h264,hevc,mpeg4,mpeg1video,mpeg2video,h263,msmpeg4v1,msmpeg4v2,msmpeg4v3,vp8,vp9,mjpeg \
    --enable-parser=h264,hevc,mpeg4video,mpegvideo,h263,vp8,vp9,mjpeg \
    --enable-bsf=h264_mp4toannexb,hevc_mp4toannexb,mpeg4_unpack_bframes,vp9_superframe_split \
    > "$OUT/ffmpeg-configure.log"
  make -j"$JOBS" > "$OUT/ffmpeg-build.log"
  make install > /dev/null
)

echo "== OpenCV $OPENCV_VERSION (core, imgproc, imgcodecs, videoio + Python bindings)"
opencv_tar=$(fetch "opencv-python-headless-$OPENCV_VERSION.tar.gz" "$OPENCV_SHA256" \
  "${OPENCV_SDIST:-}" $OPENCV_URLS)
rm -rf "$OUT/src/opencv-python-headless-$OPENCV_VERSION" "$OUT/wheel"
tar -C "$OUT/src" -xzf "$opencv_tar"
# The typing stubs cannot be generated for a subset of modules (they name features2d's types),
# so the package's setup.py must not insist on them.
setup_py=$OUT/src/opencv-python-headless-$OPENCV_VERSION/setup.py
sed -i -e 's|\[ r"python/cv2/py.typed" \] if sys.version_info >= (3, 6) else \[\]|[]|' \
  -e 's|rearrange_cmake_output_data\["cv2.typing"\] = |pass  # |' "$setup_py"
if grep -q 'py.typed' "$setup_py" || ! grep -q 'pass  # \["python/cv2"' "$setup_py"; then
  echo "$setup_py changed upstream: the typing-stub edit above no longer applies" >&2
  exit 1
fi
off() { for name in "$@"; do printf -- '-D%s=OFF ' "$name"; done; }
CMAKE_ARGS="-DBUILD_LIST=core,imgproc,imgcodecs,videoio,python3 -DWITH_FFMPEG=ON \
  -DBUILD_PNG=ON -DBUILD_JPEG=ON -DBUILD_ZLIB=ON -DWITH_PNG=ON -DWITH_JPEG=ON \
  -DCPU_DISPATCH=SSE4_1;SSE4_2;AVX;FP16;AVX2;AVX512_SKX \
  -DCMAKE_C_FLAGS=-ffunction-sections\ -fdata-sections \
  -DCMAKE_CXX_FLAGS=-ffunction-sections\ -fdata-sections \
  -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--gc-sections\ -Wl,--as-needed\ -Wl,--strip-all \
  -DCMAKE_MODULE_LINKER_FLAGS=-Wl,--gc-sections\ -Wl,--as-needed\ -Wl,--strip-all \
  $(off WITH_LAPACK WITH_EIGEN WITH_IPP WITH_OPENCL WITH_VA WITH_VA_INTEL WITH_GSTREAMER \
    WITH_V4L WITH_1394 WITH_TIFF WITH_WEBP WITH_OPENJPEG WITH_JASPER WITH_OPENEXR BUILD_OPENEXR \
    WITH_AVIF WITH_IMGCODEC_HDR WITH_IMGCODEC_SUNRASTER WITH_IMGCODEC_PXM WITH_IMGCODEC_PFM \
    WITH_IMGCODEC_GIF WITH_OPENVX WITH_PROTOBUF WITH_QUIRC WITH_ADE WITH_OBSENSOR WITH_ITT \
    WITH_OPENMP WITH_TBB WITH_GTK WITH_QT WITH_WAYLAND WITH_CUDA WITH_VTK WITH_GDAL \
    WITH_GPHOTO2 WITH_PVAPI WITH_ARAVIS WITH_XIMEA WITH_XINE WITH_MSMF WITH_DSHOW \
    WITH_ONNX WITH_HALIDE WITH_WEBNN WITH_VULKAN WITH_SPNG WITH_OPENNI2 WITH_REALSENSE \
    WITH_MFX WITH_LIBREALSENSE CV_TRACE BUILD_JAVA BUILD_opencv_java BUILD_TESTS \
    BUILD_PERF_TESTS BUILD_EXAMPLES BUILD_DOCS)"
# Its build requirements (pyproject.toml's, pinned there) in a venv of their own, without pip's
# build isolation: a re-run then finds the same paths and rebuilds only what changed.
BUILD_VENV=$OUT/venv
if [ ! -x "$BUILD_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$BUILD_VENV"
  "$BUILD_VENV/bin/pip" install -q "numpy==2.0.2" "scikit-build>=0.14.0" "setuptools==59.2.0" \
    packaging wheel
fi
(
  cd "$OUT/src/opencv-python-headless-$OPENCV_VERSION"
  PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" ENABLE_HEADLESS=1 CMAKE_ARGS="$CMAKE_ARGS" \
    CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" MAKEFLAGS="-j$JOBS" \
    "$BUILD_VENV/bin/pip" wheel --no-build-isolation --no-deps -w "$OUT/wheel" . \
    > "$OUT/opencv-build.log" 2>&1 || {
      tail -40 "$OUT/opencv-build.log" >&2
      exit 1
    }
)
wheel=$(ls "$OUT"/wheel/opencv_python_headless-*.whl)
echo "== built $wheel ($(du -k "$wheel" | cut -f1) KiB) in $(( $(date +%s) - start )) s"
