"""The floor: a python-socketio room server, no broker, no database. Run with the socketio venv's
Python: ``python socketio_server.py PORT``. ``join`` puts the connection in a room; ``send`` emits the
message to everyone in its room (the sender included), then acknowledges."""

import sys

import socketio
import uvicorn

server = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[], transports=["websocket"])


@server.event
async def join(sid, room):
    await server.enter_room(sid, room)
    return "ok"


@server.event
async def send(sid, message):
    await server.emit("message", message, room=message["room"])
    return "ok"


app = socketio.ASGIApp(server)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="websockets", lifespan="off")
