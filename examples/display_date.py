"""The asyncio documentation's "Display the current date with call_later()",
on uvffi: print the date every second for five seconds (pass a number of
seconds as the first argument to change that)."""
import datetime
import sys

import uvffi


def display_date(end_time, loop):
    print(datetime.datetime.now())
    if (loop.time() + 1.0) < end_time:
        loop.call_later(1, display_date, end_time, loop)
    else:
        loop.stop()


seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
loop = uvffi.new_event_loop()

# Schedule the first call to display_date()
end_time = loop.time() + seconds
loop.call_soon(display_date, end_time, loop)

# Blocking call interrupted by loop.stop()
try:
    loop.run_forever()
finally:
    loop.close()
