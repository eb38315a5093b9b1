# The image the fleet examples run (docs/fleet): moetune set up by the
# README's own commands, then installed, so `moetune` is on PATH.
#   docker build -t moetune:latest .
# On NVIDIA GPUs the container needs the driver library (libcuda, mounted by
# the NVIDIA container toolkit) and NVRTC (libnvrtc, from the CUDA toolkit):
# build on an image that carries NVRTC by passing it as BASE, e.g. one of
# NVIDIA's CUDA runtime images of a Debian-like system.
ARG BASE=debian:bookworm
FROM ${BASE}
COPY . /src
WORKDIR /src
RUN ci/install.sh && ci/build.sh && cmake --install build --prefix /usr/local && rm -rf build .tools
WORKDIR /
ENTRYPOINT ["moetune"]
CMD ["sweep", "--device", "auto"]
