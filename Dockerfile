# A small non-root watchd image. Build it from the repository's top:
#   docker build -t watchd:0.1.0 .
# (Images need a container engine: on a machine without one, build it in CI or elsewhere.)

FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY watchd ./watchd
# watchd and its dependencies as wheels: the final stage installs them without a compiler or network
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels watchd==0.1.0 \
    && rm -rf /wheels
# 65532: the "nonroot" user of distroless images; a sidecar that signals must share the app's UID
USER 65532:65532
WORKDIR /tmp
STOPSIGNAL SIGTERM
ENTRYPOINT ["watchd"]
CMD ["--config", "/etc/watchd/watchd.yaml"]
