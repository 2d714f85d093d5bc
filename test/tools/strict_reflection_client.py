#!/usr/bin/python3
"""An independent gRPC reflection client that resolves dependencies strictly, as grpcurl does.

Written against Debian's python3-grpcio and the reflection protos of Debian's grpc-proto, so it
shares no code with the server under test. Every file descriptor the server returns is added to a
fresh descriptor pool only after all the files it declares as dependencies; a file that uses a type
from a file it does not declare, or a declared file the server cannot serve, is an error.

Usage:
  strict_reflection_client.py [--cacert FILE] ADDR list
  strict_reflection_client.py ADDR describe SERVICE
  strict_reflection_client.py ADDR call SERVICE/METHOD JSON [COUNT]
      unary methods print the response; streaming methods (server or bidirectional) send the
      one request and print the first COUNT responses (default 1), one JSON line each
--cacert FILE speaks TLS, trusting only the CA certificates in FILE and checking the server's
certificate against ADDR's host (an IP SAN for an address, a DNS SAN for a name), as grpcurl
-cacert does. Without it the channel is plaintext.
Exit status 0 on success; 1 with a one-line reason on stderr otherwise.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
try:
    from google.protobuf import message_factory
except ImportError:  # pragma: no cover
    message_factory = None

PROTO_ROOT = "/usr/share/grpc-proto"
REFLECTION_PROTO = "grpc/reflection/v1alpha/reflection.proto"


def load_reflection_stubs():
    out = tempfile.mkdtemp(prefix="strict-refl-")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I" + PROTO_ROOT,
         "--python_out=" + out, REFLECTION_PROTO],
        check=True)
    # Loaded by path: the generated package name "grpc" would clash with grpcio itself.
    spec = importlib.util.spec_from_file_location(
        "strict_reflection_pb2", os.path.join(out, REFLECTION_PROTO.replace(".proto", "_pb2.py")))
    pb2 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pb2)
    return pb2


class StrictResolver:
    def __init__(self, channel, pb2):
        self.pb2 = pb2
        self.call = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=pb2.ServerReflectionResponse.FromString)
        self.pool = descriptor_pool.DescriptorPool()
        self.protos = {}
        self.added = set()

    def ask(self, **kw):
        responses = list(self.call(iter([self.pb2.ServerReflectionRequest(**kw)]), timeout=10))
        if len(responses) != 1:
            raise RuntimeError("expected one reflection response, got %d" % len(responses))
        r = responses[0]
        if r.HasField("error_response"):
            raise RuntimeError("reflection error %d: %s" % (r.error_response.error_code,
                                                            r.error_response.error_message))
        return r

    def list_services(self):
        r = self.ask(list_services="")
        return sorted(s.name for s in r.list_services_response.service)

    def _remember(self, response):
        for raw in response.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            self.protos.setdefault(fd.name, fd)

    def _add(self, name, chain=()):
        if name in self.added:
            return
        if name in chain:
            raise RuntimeError("dependency cycle: " + " -> ".join(chain + (name,)))
        if name not in self.protos:
            self._remember(self.ask(file_by_filename=name))
        if name not in self.protos:
            raise RuntimeError("server did not return file " + name)
        fd = self.protos[name]
        for dep in fd.dependency:
            self._add(dep, chain + (name,))
        # Raises when the file refers to a type that its declared dependencies do not define.
        self.pool.Add(fd)
        self.added.add(name)

    def resolve_symbol(self, symbol):
        r = self.ask(file_containing_symbol=symbol)
        first = None
        for raw in r.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            first = first or fd.name
            self.protos.setdefault(fd.name, fd)
        if first is None:
            raise RuntimeError("no file for symbol " + symbol)
        self._add(first)
        return first

    def service(self, name):
        self.resolve_symbol(name)
        return self.pool.FindServiceByName(name)


def message_class(desc):
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


def open_channel(argv):
    """The channel the flags ask for; the arguments after them."""
    if len(argv) > 2 and argv[1] == "--cacert":
        with open(argv[2], "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        argv = argv[:1] + argv[3:]
        return grpc.secure_channel(argv[1], credentials), argv
    return grpc.insecure_channel(argv[1]), argv


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    channel, argv = open_channel(argv)
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    verb = argv[2]
    pb2 = load_reflection_stubs()
    resolver = StrictResolver(channel, pb2)
    if verb == "list":
        for s in resolver.list_services():
            print(s)
        return 0
    if verb == "describe":
        svc = resolver.service(argv[3])
        print(json.dumps({
            "service": svc.full_name,
            "file": svc.file.name,
            "methods": [{
                "name": m.name,
                "input": m.input_type.full_name,
                "output": m.output_type.full_name,
                "client_streaming": getattr(m, "client_streaming", False),
                "server_streaming": getattr(m, "server_streaming", False),
            } for m in svc.methods],
        }))
        return 0
    if verb == "call":
        service_name, method_name = argv[3].split("/")
        svc = resolver.service(service_name)
        method = svc.methods_by_name[method_name]
        req_cls = message_class(method.input_type)
        resp_cls = message_class(method.output_type)
        req = json_format.Parse(argv[4] if len(argv) > 4 else "{}", req_cls())
        path = "/%s/%s" % (service_name, method_name)
        client_streaming = getattr(method, "client_streaming", False)
        server_streaming = getattr(method, "server_streaming", False)
        count = int(argv[5]) if len(argv) > 5 else 1
        show = lambda m: print(json_format.MessageToJson(m, indent=None, descriptor_pool=resolver.pool))
        if not client_streaming and not server_streaming:
            fn = channel.unary_unary(path, request_serializer=req_cls.SerializeToString,
                                     response_deserializer=resp_cls.FromString)
            show(fn(req, timeout=10))
            return 0
        done = threading.Event()
        if client_streaming:
            def requests():
                yield req
                done.wait(15)  # keep the request side open until the answers are in
            fn = channel.stream_stream(path, request_serializer=req_cls.SerializeToString,
                                       response_deserializer=resp_cls.FromString)
            call = fn(requests(), timeout=15)
        else:
            fn = channel.unary_stream(path, request_serializer=req_cls.SerializeToString,
                                      response_deserializer=resp_cls.FromString)
            call = fn(req, timeout=15)
        seen = 0
        for response in call:
            show(response)
            seen += 1
            if seen >= count:
                break
        done.set()
        call.cancel()
        return 0 if seen >= count else 1
    print("unknown verb " + verb, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # one line for the test to show
        print("strict-reflection: %s: %s" % (type(e).__name__, str(e).replace("\n", " ")), file=sys.stderr)
        sys.exit(1)
