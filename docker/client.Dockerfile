# The demo's client (docker-compose.yml, service `client`): dig in a loop. Built from ./docker.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bind9-dnsutils \
 && rm -rf /var/lib/apt/lists/*
COPY client.sh /usr/local/bin/dig-loop
USER nobody
CMD ["dig-loop"]
