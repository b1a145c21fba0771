# The Residue service in a container: `residue serve` for one compiled model.
#
#   docker build -t residue .
#   docker run -p 8080:8080 -v $PWD/deploy:/srv:ro -v residue-store:/data residue \
#       serve --plan /srv/plan.json --model /srv/model.onnx --store /data --addr 0.0.0.0:8080
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
