# Sourced by the device benchmarks that drive the built page (app_threads.sh, app_scale.sh): Debian's
# chromium-headless-shell and its libraries packed here for the device machine (no Node, no Chromium there; a call
# carries at most 64 MiB), and unpacked and started there. Run from the repository root.
#   here:    chr_pack_shell [gl]   the shell in thirds in .chr/p1..p3; its libraries staged in $CHR_WORK/c, rt
#                                  (`gl`: Chromium's GL and Vulkan libraries too, which WebGPU needs)
#            chr_pack_rest         .chr/p4: those libraries, today's dist/ and $CHR_WORK/data (the caller fills it)
#   device:  chr_stage DIR; chr_unpack; chr_gpu (WebGPU: the carried .gl debs, the NVIDIA ICD, ANGLE on Vulkan);
#            chr_cdp_cmd (sets the array `cdp`: bench/device/cdp.py on the shell with the common flags)
CHR_WORK=${CHR_WORK:-/tmp/thr-pack}

chr_pack_shell() {
  local work=$CHR_WORK gl=${1:-}
  rm -rf "$work" .chr && mkdir -p "$work" .chr/p1 .chr/p2 .chr/p3 .chr/p4
  (cd "$work" && apt-get download chromium-headless-shell chromium-common >/dev/null 2>&1)
  mkdir -p "$work/x" && for d in "$work"/*.deb; do dpkg -x "$d" "$work/x"; done
  local lib=$work/x/usr/lib/chromium c=$work/c rt=$work/rt
  mkdir -p "$c/locales" "$rt/lib" "$rt/fonts"
  cp "$lib"/{chromium-headless-shell,headless_lib_data.pak,headless_lib_strings.pak,headless_command_resources.pak} "$c/"
  cp "$lib"/{icudtl.dat,v8_context_snapshot.bin,snapshot_blob.bin} "$c/"
  if [ -n "$gl" ]; then cp "$lib"/{libEGL.so,libGLESv2.so,libvulkan.so.1} "$c/"; fi
  cp "$lib/locales/en-US.pak" "$c/locales/"
  # Every library the shell links that a bare Ubuntu lacks, and NSS's dlopen'ed modules; a font (Skia dies without).
  ldd "$lib/chromium-headless-shell" | awk '/=>/ {print $3}' \
    | grep -vE '/(libc|libm|libpthread|libstdc\+\+|libgcc_s|libz|libdl|librt)\.so' | sort -u | xargs -I{} cp -L {} "$rt/lib/"
  find /usr/lib/x86_64-linux-gnu -maxdepth 1 -name 'lib*.so*' \
    \( -name 'libsoftokn3.so' -o -name 'libfreebl*.so' -o -name 'libnssckbi.so' -o -name 'libnssdbm3.so' \) -exec cp -L {} "$rt/lib/" \;
  cp -L /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "$rt/fonts/"
  tar -C "$work" -cf - c/chromium-headless-shell c/headless_lib_data.pak c/headless_lib_strings.pak \
    c/headless_command_resources.pak | xz -9 -T2 | split -b 21M - "$work/shell.xz."
  mv "$work/shell.xz.aa" .chr/p1/ && mv "$work/shell.xz.ab" .chr/p2/ && mv "$work"/shell.xz.a? .chr/p3/
}

chr_pack_rest() {
  local work=$CHR_WORK
  rm -rf "$work/dist" && mkdir -p "$work/dist" && tar -C dist --exclude='*.br' --exclude='*.gz' -cf - . | tar -C "$work/dist" -xf -
  rm -rf .chr/p4 && mkdir -p .chr/p4
  tar -C "$work" --exclude=c/chromium-headless-shell --exclude='c/headless_*' -cf - c rt dist data | xz -9 -T2 > .chr/p4/rest.tar.xz
  du -sh .chr/p*
}

chr_stage() { cp "$1"/* /tmp/; }

# Unpacked under /tmp/b: the shell once per machine, the rest again whenever a newer one was staged.
chr_unpack() {
  mkdir -p /tmp/b
  if [ ! -e /tmp/b/.rest ] || [ /tmp/rest.tar.xz -nt /tmp/b/.rest ]; then
    rm -rf /tmp/b/dist /tmp/b/data && xz -dc /tmp/rest.tar.xz | tar -C /tmp/b -xf - && touch /tmp/b/.rest
  fi
  [ -x /tmp/b/c/chromium-headless-shell ] || cat /tmp/shell.xz.a? | xz -dc | tar -C /tmp/b -xf -
  printf '<fontconfig><dir>/tmp/b/rt/fonts</dir><cachedir>/tmp/fccache</cachedir></fontconfig>\n' > /tmp/b/fonts.conf
  export FONTCONFIG_FILE=/tmp/b/fonts.conf LD_LIBRARY_PATH=/tmp/b/c:/tmp/b/rt/lib
}

# WebGPU on the GPU (bench/results/2026-12-01-h200-chromium.md): the Vulkan loader from the carried .gl debs, the
# NVIDIA ICD, and ANGLE on Vulkan (with GL on SwiftShader, Dawn hands WebGPU the SwiftShader adapter).
chr_gpu() {
  # The debs go over /: only on the device machine (its NVIDIA driver lives under /usr/local/nvidia).
  [ -d /usr/local/nvidia ] || { echo "no /usr/local/nvidia: the WebGPU run is for the device machine" >&2; return 1; }
  ls .gl/*.deb >/dev/null 2>&1 || { echo "no .gl/*.deb carried: WebGPU needs the Vulkan loader (see the device README)" >&2; return 1; }
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/nvidia/lib64
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  CHR_GPU_FLAGS=(--use-angle=vulkan --use-vulkan --disable-vulkan-surface --enable-features=Vulkan
    --ignore-gpu-blocklist --enable-unsafe-webgpu)
}

chr_cdp_cmd() {
  cdp=(python3 bench/device/cdp.py --chromium /tmp/b/c/chromium-headless-shell)
  local f
  for f in --headless --no-sandbox --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-quic --disable-dev-shm-usage "$@"; do cdp+=(--flag="$f"); done
}
