#!/usr/bin/env bash
# Installs the system packages the tests use, where they are missing:
#   socat                      pseudo-terminal pairs (the serial devices of the tests)
#   python3-grpcio, python3-grpc-tools, python3-protobuf, grpc-proto
#                              the independent, strict gRPC reflection client (grpcurl's way)
#   libusb-1.0-0               what node-hid's prebuilt binary needs to load (the HID driver)
#   gpiod                      the libgpiod tools the GPIO driver runs (tests use fakes of them,
#                              and check the real ones on a machine without GPIO chips)
#   chromium                   the headless browser the dashboard test drives (playwright-core)
#   docker-compose             validates docker-compose.yml (`docker-compose config`) without an engine
#   etcd-server                the etcd the control plane's replicated state backend tests start
#   openssl                    makes the injection webhook test's HTTPS certificate
#   ffmpeg                     ffmpeg/ffprobe: the capture child of cameras and microphones (tests feed it lavfi
#                              stand-ins) and the consumer that checks what the mesh delivers
#   python3-pymodbus, python3-serial-asyncio
#                              the Modbus TCP clients and the RTU slave of the Modbus tests and bench
#                              (pymodbus's serial server needs serial_asyncio and does not pull it in)
# As root it installs them with apt-get; otherwise it says what is missing and the tests that
# need them skip with a printed reason.
set -euo pipefail

missing=()
command -v socat >/dev/null 2>&1 || missing+=(socat)
[ -f /usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto ] || missing+=(grpc-proto)
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || missing+=(python3-grpcio)
/usr/bin/python3 -c 'import grpc_tools.protoc' >/dev/null 2>&1 || missing+=(python3-grpc-tools)
/usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1 || missing+=(python3-protobuf)
/usr/bin/python3 -c 'import serial' >/dev/null 2>&1 || missing+=(python3-serial)
ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0' || missing+=(libusb-1.0-0)
command -v gpiodetect >/dev/null 2>&1 || missing+=(gpiod)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
/usr/bin/python3 -c 'import pymodbus' >/dev/null 2>&1 || missing+=(python3-pymodbus)
/usr/bin/python3 -c 'import serial_asyncio' >/dev/null 2>&1 || missing+=(python3-serial-asyncio)

if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: all present"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "test dependencies: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "test dependencies: missing ${missing[*]} (not root: install them to run every test; the tests that need them will skip)"
fi
