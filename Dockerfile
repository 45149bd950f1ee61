# syntax=docker/dockerfile:1
# Multi-arch image of spotter: `docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 .`
# UNTESTED: no Docker engine runs where this project is developed and tested (see docs/deploy.md).
#
# The build stage runs on the build machine's own architecture ($BUILDPLATFORM) and
# cross-compiles with cargo-zigbuild for $TARGETPLATFORM, at the same glibc floor as the .deb
# builds, so no emulation is needed; the runtime stage is Debian slim for the target.

ARG RUST_VERSION=1.95
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS build
ARG TARGETPLATFORM
ARG GLIBC=2.31
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang1-14 python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --break-system-packages ziglang cargo-zigbuild
RUN case "$TARGETPLATFORM" in \
      linux/amd64)  echo x86_64-unknown-linux-gnu ;; \
      linux/arm64)  echo aarch64-unknown-linux-gnu ;; \
      linux/arm/v7) echo armv7-unknown-linux-gnueabihf ;; \
      *) echo "unsupported platform $TARGETPLATFORM" >&2; exit 1 ;; \
    esac > /rust-target \
 && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo zigbuild --release --locked --bin spotter --target "$(cat /rust-target).${GLIBC}" \
 && scripts/check-glibc.sh "target/$(cat /rust-target)/release/spotter" "${GLIBC}" \
 && install -D "target/$(cat /rust-target)/release/spotter" /out/usr/bin/spotter

FROM debian:bookworm-slim AS runtime
# ca-certificates: MQTT over TLS. No other runtime libraries are needed (V4L2 is plain ioctls).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home --groups video,dialout spotter
COPY --from=build /out/usr/bin/spotter /usr/bin/spotter
COPY models/mobilenet_ssd_v2_coco_quant_postprocess.tflite models/coco_labels.txt /usr/share/spotter/models/
COPY deploy/spotter.toml /etc/spotter/spotter.toml
USER spotter
# TF-Serving's REST port: preview, metrics, predict (`spotter serve` / [http] of `spotter run`).
EXPOSE 8501
ENTRYPOINT ["/usr/bin/spotter"]
CMD ["run", "--config", "/etc/spotter/spotter.toml"]
