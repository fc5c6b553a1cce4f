"""The transports MLServer is built on, doing no work: the floor under its REST and gRPC.

    python -m bench.bare_transports --http-port 9000 --grpc-port 9001

One process, one uvloop event loop, as MLServer runs them: uvicorn with `httptools` for REST
and a `grpc.aio` server for gRPC. Both answer the V2 infer call with a fixed one-row response
and read nothing but the request itself, so what a caller measures is the transport alone
(connection, framing, parsing, the event loop), which no runtime or setting can go below.
"""

from __future__ import annotations

import argparse
import asyncio

from bench.load import MODEL

REST_RESPONSE = (b'{"model_name":"%s","outputs":[{"name":"probability","shape":[1,1],'
                 b'"datatype":"FP32","data":[0.5]}]}' % MODEL.encode())


async def rest_app(scope, receive, send) -> None:
    """ASGI without a framework: 200 and the fixed response for any request, body read."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": REST_RESPONSE})


def grpc_servicer():
    from mlserver.grpc import dataplane_pb2 as pb
    from mlserver.grpc import dataplane_pb2_grpc as rpc

    class FixedResponse(rpc.GRPCInferenceServiceServicer):
        response = pb.ModelInferResponse(
            model_name=MODEL,
            outputs=[pb.ModelInferResponse.InferOutputTensor(name="probability",
                                                             datatype="FP32", shape=[1, 1])],
            raw_output_contents=[b"\x00\x00\x00\x3f"])        # 0.5 as little-endian FP32

        async def ModelInfer(self, request, context):
            return self.response

    return FixedResponse(), rpc.add_GRPCInferenceServiceServicer_to_server


async def serve(host: str, http_port: int, grpc_port: int) -> None:
    import uvicorn
    from grpc import aio

    grpc_server = aio.server()
    servicer, add_to_server = grpc_servicer()
    add_to_server(servicer, grpc_server)
    grpc_server.add_insecure_port(f"{host}:{grpc_port}")
    await grpc_server.start()
    rest_server = uvicorn.Server(uvicorn.Config(
        rest_app, host=host, port=http_port, http="httptools", loop="none",
        lifespan="off", access_log=False, log_level="warning"))
    await rest_server.serve()
    await grpc_server.stop(grace=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvloop
    uvloop.install()                   # MLServer's event loop
    asyncio.run(serve(args.host, args.http_port, args.grpc_port))


if __name__ == "__main__":
    main()
