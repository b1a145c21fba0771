# The Residue service in a container: `residue serve` for one compiled model.
#
#   docker build -t residue .
#   docker run -p 8080:8080 -e RESIDUE_WORKER_ID=worker-1 \
#       -v $PWD/deploy:/srv:ro -v residue-store:/data residue
#
# The run line expects the plan and the model in ./deploy on the host, as
# deploy/plan.json and deploy/model.onnx (mounted read-only at /srv); the
# default command below serves them. RESIDUE_WORKER_ID is the worker id
# (`residue serve --worker-id`): give each container its own, the same
# across restarts, so that a restarted container takes its unfinished jobs
# back at once (without it the id comes from the container's host name,
# which changes with each `docker run`, and its jobs come back only when
# another worker on the store takes them over after --lease-secs).
#
# The image needs no network at run time: the model and plan come in by a
# volume (or a COPY in a derived image), keys and jobs live in /data.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# `residue` without the training stack (the `train` feature is off); add
# `--features s3` for `--store s3://bucket/prefix`.
RUN cargo build --release --locked -p residue-cli \
 && strip target/release/residue \
 && cp target/release/residue /usr/local/bin/residue

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data residue \
 && mkdir -p /data && chown residue /data
COPY --from=build /usr/local/bin/residue /usr/local/bin/residue
USER residue
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["residue"]
CMD ["serve", "--plan", "/srv/plan.json", "--model", "/srv/model.onnx", "--store", "/data", "--addr", "0.0.0.0:8080"]
