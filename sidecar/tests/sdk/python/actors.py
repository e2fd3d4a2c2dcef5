"""The official Dapr Python SDK's actors (PyPI `dapr[fastapi]`) on Tandem.

Started by sidecar/tests/sdk_actors.rs in two roles:

  python actors.py host     an actor app: FastAPI + `DaprActor`, serving `Counter` on APP_PORT;
                            its state manager talks to its own sidecar on DAPR_HTTP_PORT
  python actors.py client   `ActorProxy` calls through another sidecar (DAPR_HTTP_PORT), checking
                            turn-based state, reminders, timers and errors; exits non-zero on the
                            first failed check and prints `all dapr actor checks passed`

Nothing here is Tandem-specific: it is what the SDK's own examples do.
"""

import asyncio
import contextlib
import datetime
import os
import sys
import traceback

from dapr.actor import Actor, ActorId, ActorInterface, ActorProxy, Remindable, actormethod


class CounterInterface(ActorInterface):
    @actormethod(name='Add')
    async def add(self, amount: int) -> int: ...

    @actormethod(name='Get')
    async def get(self) -> int: ...

    @actormethod(name='Remind')
    async def remind(self, enabled: bool) -> None: ...

    @actormethod(name='Reminded')
    async def reminded(self) -> object: ...

    @actormethod(name='Tick')
    async def tick(self, enabled: bool) -> None: ...

    @actormethod(name='Ticks')
    async def ticks(self) -> int: ...

    @actormethod(name='Fail')
    async def fail(self) -> None: ...


class Counter(Actor, CounterInterface, Remindable):
    """A counter kept in actor state, with a reminder and a timer that count their firings."""

    async def add(self, amount: int) -> int:
        _, total = await self._state_manager.try_get_state('total')
        total = (total or 0) + amount
        await self._state_manager.set_state('total', total)
        await self._state_manager.save_state()
        return total

    async def get(self) -> int:
        _, total = await self._state_manager.try_get_state('total')
        return total or 0

    async def remind(self, enabled: bool) -> None:
        if enabled:
            await self.register_reminder(
                'nudge',
                b'reminder-payload',
                datetime.timedelta(milliseconds=200),
                datetime.timedelta(milliseconds=300),
            )
        else:
            await self.unregister_reminder('nudge')

    async def receive_reminder(self, name, state, due_time, period, ttl=None) -> None:
        _, seen = await self._state_manager.try_get_state('reminded')
        seen = seen or {'count': 0, 'payloads': []}
        seen['count'] += 1
        seen['payloads'] = sorted(set(seen['payloads']) | {f'{name}:{state.decode()}'})
        await self._state_manager.set_state('reminded', seen)
        await self._state_manager.save_state()

    async def reminded(self) -> object:
        _, seen = await self._state_manager.try_get_state('reminded')
        return seen or {'count': 0, 'payloads': []}

    async def tick(self, enabled: bool) -> None:
        if enabled:
            await self.register_timer(
                'ticker',
                self.on_tick,
                'timer-payload',
                datetime.timedelta(milliseconds=100),
                datetime.timedelta(milliseconds=150),
            )
        else:
            await self.unregister_timer('ticker')

    async def on_tick(self, payload) -> None:
        assert payload == 'timer-payload', payload
        _, ticks = await self._state_manager.try_get_state('ticks')
        await self._state_manager.set_state('ticks', (ticks or 0) + 1)
        await self._state_manager.save_state()

    async def ticks(self) -> int:
        _, ticks = await self._state_manager.try_get_state('ticks')
        return ticks or 0

    async def fail(self) -> None:
        raise RuntimeError('this method always fails')


def host():
    import uvicorn
    from dapr.ext.fastapi import DaprActor
    from fastapi import FastAPI

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await actors.register_actor(Counter)
        yield

    app = FastAPI(lifespan=lifespan)
    actors = DaprActor(app)

    @app.get('/healthz')
    async def healthz():
        return {'ok': True}

    uvicorn.run(app, host='127.0.0.1', port=int(os.environ['APP_PORT']), log_level='warning')


async def eventually(check, what, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await check()
        if last is True:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f'{what}: still {last!r} after {timeout}s')
        await asyncio.sleep(0.1)


async def client():
    proxy = lambda actor_id: ActorProxy.create('Counter', ActorId(actor_id), CounterInterface)

    # Turn-based state: concurrent adds to one actor never lose an update.
    a = proxy('sdk-a')
    results = await asyncio.gather(*(a.Add(1) for _ in range(20)))
    assert sorted(results) == list(range(1, 21)), results
    assert await a.Get() == 20
    # Actors are independent.
    b = proxy('sdk-b')
    assert await b.Add(5) == 5
    assert await a.Get() == 20

    # A method that raises comes back as an error, and the actor keeps working.
    try:
        await a.Fail()
    except Exception as err:  # the SDK raises DaprInternalError
        assert 'fails' in str(err) or 'ERR_ACTOR' in str(err) or '500' in str(err), err
    else:
        raise AssertionError('Fail() did not fail')
    assert await a.Add(1) == 21

    # Reminders: registered by the actor, fired with the SDK's payload, then stopped.
    await a.Remind(True)

    async def reminded_twice():
        seen = await a.Reminded()
        return True if seen['count'] >= 2 else seen

    await eventually(reminded_twice, 'the reminder fires')
    seen = await a.Reminded()
    assert seen['payloads'] == ['nudge:reminder-payload'], seen
    await a.Remind(False)
    stopped = (await a.Reminded())['count']
    await asyncio.sleep(1.0)
    after = (await a.Reminded())['count']
    assert after <= stopped + 1, f'the reminder kept firing: {stopped} -> {after}'

    # Timers: fired with their payload inside the actor's turn, then stopped.
    await b.Tick(True)

    async def ticked_twice():
        n = await b.Ticks()
        return True if n >= 2 else n

    await eventually(ticked_twice, 'the timer fires')
    await b.Tick(False)
    stopped = await b.Ticks()
    await asyncio.sleep(0.8)
    assert await b.Ticks() <= stopped + 1, 'the timer kept firing'
    print('all dapr actor checks passed')


if __name__ == '__main__':
    role = sys.argv[1] if len(sys.argv) > 1 else ''
    try:
        if role == 'host':
            host()
        elif role == 'client':
            asyncio.run(client())
        else:
            raise SystemExit('usage: actors.py host|client')
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
