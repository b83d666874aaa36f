# LedgerMQ on an empty base image: two static binaries and nothing else (no
# shell, no libc, no package manager). The binaries are built on the host by
# deploy/build-image.sh (CGO_ENABLED=0 go build), which then runs
#
#   docker build -t ledgermq:latest -f Dockerfile <context with bin/>
#
# This way the build needs no base image to be pulled: it works offline and
# with no registry.
FROM scratch

COPY bin/broker bin/mqctl /usr/local/bin/
# The data directory, owned by the unprivileged user the broker runs as; a
# named volume mounted there starts with this ownership.
COPY --chown=65532:65532 data /data
USER 65532:65532

ENV LEDGERMQ_DATA_DIR=/data \
    LEDGERMQ_LISTEN=0.0.0.0:7001 \
    LEDGERMQ_RAFT_LISTEN=0.0.0.0:8001
VOLUME /data
EXPOSE 7001 8001 9092
ENTRYPOINT ["/usr/local/bin/broker"]
