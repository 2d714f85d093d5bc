"""A Modbus TCP client app (pymodbus's synchronous client), for the Modbus tests and bench.

  poll  --unit U --seconds S   read holding registers of unit U back to back for S seconds; every
                               response is checked against its request (transaction id, unit id)
                               and against the slave's values (register a of unit u = u*1000 + a)
  read  --unit U               one read; prints the values or the exception code and the time taken
  write --unit U --value V     one write of register --address; prints the exception code, if any

With --serial PATH (and --baud) the client is pymodbus's RTU client on that serial port instead:
the baseline of the Modbus bench, one master alone on the bus.

Prints one JSON object on stdout.
"""
import argparse
import json
import sys
import time

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.pdu import ExceptionResponse
from pymodbus.register_read_message import ReadHoldingRegistersRequest


def connect(args):
    if args.serial:
        client = ModbusSerialClient(port=args.serial, baudrate=args.baud, bytesize=8, parity="N", stopbits=1, timeout=args.timeout, retries=0)
    else:
        client = ModbusTcpClient(args.host, port=args.port, timeout=args.timeout, retries=0)
    if not client.connect():
        print(json.dumps({"error": f"cannot connect to {args.serial or f'{args.host}:{args.port}'}"}))
        sys.exit(2)
    return client


def expected(unit, address, count):
    return [unit * 1000 + a for a in range(address, address + count)]


def check(response, request_tid, unit, address, count):
    """None when the response is the slave's answer to this request, else what is wrong with it."""
    if request_tid is not None and response.transaction_id != request_tid:
        return f"transaction id {response.transaction_id}, sent {request_tid}"
    if response.unit_id != unit:
        return f"unit {response.unit_id}, sent {unit}"
    if isinstance(response, ExceptionResponse):
        return None
    if list(response.registers) != expected(unit, address, count):
        return f"registers {list(response.registers)[:4]}..., want {expected(unit, address, count)[:4]}..."
    return None


def poll(args):
    client = connect(args)
    result = {"unit": args.unit, "requests": 0, "ok": 0, "exceptions": {}, "errors": 0, "mismatches": []}
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        request = ReadHoldingRegistersRequest(args.address, args.count, args.unit)
        result["requests"] += 1
        try:
            response = client.execute(request)
        except Exception as exc:  # noqa: BLE001 (a client error is counted and reported)
            result["errors"] += 1
            result.setdefault("first_error", str(exc))
            continue
        if response.isError() and not isinstance(response, ExceptionResponse):
            result["errors"] += 1
            result.setdefault("first_error", str(response))
            continue
        # An RTU frame has no transaction id: over serial only the unit and the values tell.
        problem = check(response, None if args.serial else request.transaction_id, args.unit, args.address, args.count)
        if problem is not None:
            result["mismatches"].append(problem)
        elif isinstance(response, ExceptionResponse):
            code = f"0x{response.exception_code:02x}"
            result["exceptions"][code] = result["exceptions"].get(code, 0) + 1
        else:
            result["ok"] += 1
    client.close()
    result["mismatches"] = result["mismatches"][:5]
    return result


def read(args):
    client = connect(args)
    start = time.monotonic()
    response = client.read_holding_registers(args.address, args.count, slave=args.unit)
    seconds = time.monotonic() - start
    client.close()
    if isinstance(response, ExceptionResponse):
        return {"exception": response.exception_code, "seconds": seconds, "transaction_id": response.transaction_id, "unit": response.unit_id}
    if response.isError():
        return {"error": str(response), "seconds": seconds}
    return {"registers": list(response.registers), "seconds": seconds, "transaction_id": response.transaction_id, "unit": response.unit_id}


def write(args):
    client = connect(args)
    response = client.write_register(args.address, args.value, slave=args.unit)
    client.close()
    if isinstance(response, ExceptionResponse):
        return {"exception": response.exception_code}
    if response.isError():
        return {"error": str(response)}
    return {"exception": None}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["poll", "read", "write"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serial", default="")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--address", type=int, default=0)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--value", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--timeout", type=float, default=5)
    args = parser.parse_args()
    print(json.dumps({"poll": poll, "read": read, "write": write}[args.mode](args)), flush=True)


if __name__ == "__main__":
    main()
