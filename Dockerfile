# whirr server: the HTTP API (/api/v1) over PostgreSQL (or SQLite in /data), and the web
# dashboard at / (whirr[server] brings its libraries). tests/packaging/test_dockerfile.py
# replays the pip lines below in a clean venv and starts the ENTRYPOINT.
#   docker build -t whirr .
#   docker run -p 8080:8080 -v whirr-data:/data whirr      # token printed on first start
# See docs/server-setup.md; docker-compose.yml adds PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WHIRR_DATA_DIR=/data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY whirr ./whirr
RUN pip install ".[server]" \
    && useradd --system --uid 10001 --home-dir /data whirr \
    && mkdir -p /data && chown whirr /data

USER whirr
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health', timeout=2)"
# 0.0.0.0 inside the container; auth stays on (the token is created in /data on first start).
ENTRYPOINT ["whirr", "server", "--host", "0.0.0.0", "--port", "8080"]
