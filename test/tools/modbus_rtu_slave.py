"""A Modbus RTU slave (pymodbus, an implementation nobody here wrote) on a serial port.

Units --units each hold 100 holding registers, register a of unit u holding u*1000 + a, so a
client can tell from the values which unit answered. Units not listed never answer (pymodbus's
ignore_missing_slaves), as a unit that is off the bus. Every write it executes is printed as one
JSON line on stdout ({"write": unit, "address": a, "values": [...]}), so a test can tell that a
refused write never reached it; "ready" is printed once the port is open.
"""
import argparse
import asyncio
import json
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server import StartAsyncSerialServer

REGISTERS = 100


class LoggedSlave(ModbusSlaveContext):
    def __init__(self, unit):
        self.unit = unit
        block = ModbusSequentialDataBlock(0, [unit * 1000 + a for a in range(REGISTERS + 1)])
        super().__init__(hr=block, zero_mode=True)

    def setValues(self, fc_as_hex, address, values):  # noqa: N802 (pymodbus's name)
        print(json.dumps({"write": self.unit, "function": fc_as_hex, "address": address, "values": list(values)}), flush=True)
        super().setValues(fc_as_hex, address, values)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", required=True)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--units", default="1,2,3")
    args = parser.parse_args()
    units = [int(u) for u in args.units.split(",")]
    context = ModbusServerContext(slaves={u: LoggedSlave(u) for u in units}, single=False)
    server = await StartAsyncSerialServer(
        context=context,
        framer=ModbusRtuFramer,
        port=args.port,
        baudrate=args.baud,
        bytesize=8,
        parity="N",
        stopbits=1,
        ignore_missing_slaves=True,
        broadcast_enable=True,
        defer_start=True,
    )
    await server.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
