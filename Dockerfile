# One image for every authbench container: targets, Locust master and workers, runner.
# docker-compose.yml starts it in each role; on its own it serves one target:
#   docker build -t authbench . && docker run --rm -p 8000:8000 -e AUTH_MODE=session authbench
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Match your own uid (--build-arg UID=$(id -u)) so results written to a bind mount are yours.
ARG UID=1000
ARG GID=1000
RUN groupadd --gid "${GID}" authbench \
    && useradd --uid "${UID}" --gid "${GID}" --create-home --shell /usr/sbin/nologin authbench

WORKDIR /app
COPY pyproject.toml README.md ./
COPY authbench ./authbench
COPY targets ./targets
COPY loadtests ./loadtests
COPY analysis ./analysis
COPY adapters ./adapters
RUN pip install . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/results /keys \
    && chown authbench:authbench /app/results /keys

USER authbench
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["authbench", "serve", "--host", "0.0.0.0", "--port", "8000"]
