# gslb in a container: one image for every role (the command picks it).
#   docker build -t gslb .
#   docker run --rm -p 5353:53/udp -p 5353:53/tcp -p 8053:8053 gslb serve \
#       --zones /etc/gslb/zones --dns 0.0.0.0:53 --http 0.0.0.0:8053
# The wheels are built with a C compiler (the compiled UDP loop, gslb/shell/_udploop.c); the
# image that runs has none.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gslb ./gslb
COPY healthchecks ./healthchecks
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --home-dir /var/lib/gslb --create-home gslb
COPY zones /etc/gslb/zones

USER gslb
WORKDIR /var/lib/gslb
# Every flag can also be set as GSLB_<FLAG> (GSLB_REDIS, GSLB_DNS, GSLB_API_TOKENS, ...).
ENV GSLB_LOG_FORMAT=json
EXPOSE 53/udp 53/tcp 8053/tcp
ENTRYPOINT ["gslb"]
CMD ["serve", "--zones", "/etc/gslb/zones", "--dns", "0.0.0.0:53", "--http", "0.0.0.0:8053"]
