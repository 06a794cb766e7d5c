# reaper container images: `FROM scratch` images holding only the static binary /reaper.
#
# Targets:
#   runtime (default)  ENTRYPOINT ["/reaper", "--"]
#   pause              ENTRYPOINT ["/reaper", "--pause"], a pod sandbox image
#
#   docker build -t reaper .                               # pulls rust:1-alpine, builds reaper in it
#   docker build --target pause -t reaper-pause .
#
# Dockerfile.local builds the same images from a binary already built, pulling nothing:
#
#   scripts/build-static                                   # also copies it to target/static/reaper
#   docker build -f Dockerfile.local -t reaper .
#   docker build -f Dockerfile.local --target pause -t reaper-pause .
#
# Use it in your own image:
#
#   COPY --from=reaper /reaper /reaper
#   ENTRYPOINT ["/reaper", "--"]
#   CMD ["your-server", "--flag"]
#
# reaper's options then come from REAPER_* variables (`docker run -e REAPER_KILL_AFTER=10s`), or
# put them in the ENTRYPOINT: ["/reaper", "--kill-after", "10s", "--"].
#
# From source only: the classic builder (DOCKER_BUILDKIT=0, or a docker CLI without buildx)
# builds every stage up to the target, so a stage here that copied a local binary would break
# `docker build .` in a fresh clone. The targets that copy a binary you built yourself are in
# Dockerfile.local, with the same names, labels, user and entrypoints.
#
# Non-root: every image runs as 65534:65534 (nobody) unless told otherwise. reaper needs no
# privilege as PID 1: it reaps orphans whoever owns them, and signals only the command it
# started (same user) and its leftovers. /reaper is mode 0755 (cargo's output mode, which COPY
# keeps), so it runs as whatever user `--user` or `securityContext.runAsUser` picks.

ARG VERSION=0.1.0
ARG SOURCE_URL=
ARG RUST_VERSION=1

# ---------------------------------------------------------------------------------------------
# build: the static binary from source, the same way as scripts/build-static on a host. On
# Alpine the host target is musl, statically linked, on x86_64 and aarch64 alike. With rust-src
# the standard library is rebuilt without its backtrace printer, which a panic=abort binary
# never uses (`wc -c` below prints the size it comes to); if that component cannot be fetched
# the script falls back to a plain build.
FROM rust:${RUST_VERSION}-alpine AS build
# The context has no .git: `--build-arg REAPER_BUILD_COMMIT=$(git rev-parse --short=12 HEAD)`
# puts the commit into `reaper --version` (else it says git.unknown).
ARG REAPER_BUILD_COMMIT=
RUN apk add --no-cache musl-dev && (rustup component add rust-src || true)
WORKDIR /src
COPY . .
RUN cp "$(scripts/build-static | tail -n 1)" /reaper \
 && /reaper --version && wc -c /reaper

# ---------------------------------------------------------------------------------------------
# from-source: only /reaper, built above; `runtime` and `pause` are this image.
FROM scratch AS from-source
ARG VERSION
ARG SOURCE_URL
LABEL org.opencontainers.image.title="reaper" \
      org.opencontainers.image.description="A tiny init for containers: forwards signals, reaps zombies, drains leftovers, daemonizes." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /reaper /reaper
USER 65534:65534
ENTRYPOINT ["/reaper", "--"]

# ---------------------------------------------------------------------------------------------
# pause: a Kubernetes pod sandbox ("pause") image for containerd's sandbox image or CRI-O's
# pause_image (deploy/kubernetes/): reaper only reaps, and exits 0 on TERM/INT/QUIT.
FROM from-source AS pause
LABEL org.opencontainers.image.title="reaper-pause" \
      org.opencontainers.image.description="reaper --pause: a pod sandbox (pause) image that reaps the pod's orphans."
ENTRYPOINT ["/reaper", "--pause"]

# ---------------------------------------------------------------------------------------------
# runtime (the default target, so it stays last).
FROM from-source AS runtime
