"""The fast engine's compiled loops: each method's pipeline as max-plus recurrences over batches.

Every function mirrors, operation for operation, what the SimPy processes of `sim` compute, so
the two engines agree to float rounding (and mostly to the bit):

    link     `transmit`: the held time of one payload (`sim.network.Link.transmit`), with the
             service end of a varying link from `links.capacity.LinkClock`'s rule;
             delivery = max(previous delivery, send end + latency + jitter)
    block    hierarchical (block), full_cloud streaming and the upload phase: the sender puts
             batch b into the uplink buffer at max(ready_b, D_{b-K}), the link starts it at
             max(put_b, D_{b-1}); the cloud trains at max(delivered_b, its previous end)
    drop     hierarchical under drop_oldest / drop_newest: the edge never waits; the buffer
             is played arrival by arrival, departures first where SimPy fires them first
    split    split learning: everything in turn, both links
    stored   full_cloud's second phase: the cloud trains from stored data

A link is a tuple (see `engines.fast.link_arrays`):

    ints    [kind, next opportunity, opportunities per period]; kind 0 constant rate, 1 constant
            rate with outages, 2 rate trace, 3 Mahimahi trace
    floats  LINK_FLOATS below
    arrays  opportunity times (ms, one period), rate trace starts (s), Mbit/s and cumulative bits,
            outage starts and ends (merged; an end of +inf marks the window past the drawn horizon),
            extra packets and jitter (s) per batch (empty: none)

A kernel that reaches past the outage model's drawn horizon returns status NEED_HORIZON; the
caller draws further and runs it again.
"""
import math

import numpy as np
from numba import njit

# the float parameters of a link, by position
RATE_BPS, SER_PAYLOAD_S, SER_UNIT_S, RTO_MS, LATENCY_S, SCALE, OFFSET_S, PERIOD_MS, PERIOD_S, PAYLOAD_BYTES, \
    UNIT_BYTES, OPPORTUNITY_BYTES = range(12)
CONSTANT, CONSTANT_OUTAGES, RATE_TRACE, PACKET_TRACE = range(4)
OK, NEED_HORIZON = 0, 1
EDGE_NONE, EDGE_CPU, EDGE_GPU = range(3)  # who makes the batches: nobody (raw data), the CPU alone, CPU + GPU


# ---- varying links (links.capacity.LinkClock) ------------------------------------------------------
@njit(cache=True)
def _window(we, t):
    """Index of the first (merged) outage window ending after t, or -1."""
    i = np.searchsorted(we, t, side="right")
    return i if i < we.shape[0] else -1


@njit(cache=True)
def _index_at(link, t):
    ints, lf, times = link[0], link[1], link[2]
    time_ms = (t + lf[OFFSET_S]) * 1e3
    time_ms -= 1e-6
    cycle = max(0.0, math.floor(time_ms / lf[PERIOD_MS]))
    within = np.searchsorted(times, time_ms - cycle * lf[PERIOD_MS], side="left")
    return np.int64(cycle) * ints[2] + within


@njit(cache=True)
def _time_at(link, index):
    ints, lf, times = link[0], link[1], link[2]
    cycle = index // ints[2]
    within = index - cycle * ints[2]
    return (cycle * lf[PERIOD_MS] + times[within]) / 1e3 - lf[OFFSET_S]


@njit(cache=True)
def _packets_end(link, start, packets):
    if packets <= 0:
        return start
    ints, ws, we = link[0], link[6], link[7]
    index = max(ints[1], _index_at(link, start))
    while True:
        at = _time_at(link, index)
        w = _window(we, at)
        if w >= 0 and ws[w] <= at:  # this opportunity falls in an outage
            if math.isinf(we[w]):
                return math.nan
            index = max(index + 1, _index_at(link, we[w]))
            continue
        usable = packets if w < 0 else max(1, _index_at(link, ws[w]) - index)  # as LinkClock._packets_end_s
        if usable >= packets:
            last = index + packets - 1
            ints[1] = last + 1
            return _time_at(link, last)
        packets -= usable
        if math.isinf(we[w]):
            return math.nan
        index = max(index + usable, _index_at(link, we[w]))


@njit(cache=True)
def _bits_until(link, t):
    lf, starts, mbps, cum = link[1], link[3], link[4], link[5]
    time_s = t + lf[OFFSET_S]
    cycle = math.floor(time_s / lf[PERIOD_S])
    within = time_s - cycle * lf[PERIOD_S]
    i = max(0, np.searchsorted(starts, within, side="right") - 1)
    return lf[SCALE] * (cycle * cum[-1] + cum[i] + mbps[i] * 1e6 * (within - starts[i]))


@njit(cache=True)
def _time_of_bits(link, bits):
    lf, starts, mbps, cum = link[1], link[3], link[4], link[5]
    bits = bits / lf[SCALE]
    per_period = cum[-1]
    cycle = math.ceil(bits / per_period) - 1
    rest = bits - cycle * per_period
    i = np.searchsorted(cum, rest, side="left") - 1
    i = min(max(i, 0), mbps.shape[0] - 1)
    return cycle * lf[PERIOD_S] + starts[i] + (rest - cum[i]) / (mbps[i] * 1e6) - lf[OFFSET_S]


@njit(cache=True)
def _fluid_end(link, start, bits):
    kind, lf, ws, we = link[0][0], link[1], link[6], link[7]
    time_s = start
    while True:
        if bits <= 0:
            return time_s
        w = _window(we, time_s)
        if w >= 0 and ws[w] <= time_s:
            if math.isinf(we[w]):
                return math.nan
            time_s = we[w]
            continue
        if kind == CONSTANT_OUTAGES:
            end_s = time_s + bits / lf[RATE_BPS]
            if w < 0 or end_s <= ws[w]:
                return end_s
            bits -= (ws[w] - time_s) * lf[RATE_BPS]
        else:
            target = _bits_until(link, time_s) + bits
            end_s = _time_of_bits(link, target)
            if w < 0 or end_s <= ws[w]:
                return end_s
            bits = target - _bits_until(link, ws[w])
        if math.isinf(we[w]):
            return math.nan
        time_s = we[w]


@njit(cache=True)
def transmit(link, batch, start):
    """(departure time, busy seconds) of `batch` put on the wire at `start` (NaN: past the horizon)."""
    kind, lf = link[0][0], link[1]
    extra = link[8][batch] if link[8].shape[0] > 0 else 0
    if kind == CONSTANT:
        wire_s = lf[SER_PAYLOAD_S]
        if extra == 0:
            return start + wire_s, wire_s
        resend_s = extra * lf[SER_UNIT_S]
        return start + (wire_s + resend_s + extra * lf[RTO_MS] / 1e3), wire_s + resend_s
    resent_bytes = extra * lf[UNIT_BYTES]
    if kind == PACKET_TRACE:
        opportunity = lf[OPPORTUNITY_BYTES]
        packets = np.int64(math.ceil(lf[PAYLOAD_BYTES] / opportunity)) + np.int64(math.ceil(resent_bytes / opportunity))
        end = _packets_end(link, start, packets)
    else:
        end = _fluid_end(link, start, 8.0 * (lf[PAYLOAD_BYTES] + resent_bytes))
    if math.isnan(end):
        return end, end
    busy_s = max(0.0, end - start)  # >= 0 as in sim.network.Link
    return start + (busy_s + extra * lf[RTO_MS] / 1e3), busy_s


@njit(cache=True)
def _deliver(link, batch, departed, last_delivery, propagated):
    """(delivery time, when the receiver has it): in order, after latency and jitter."""
    arrival = departed + link[1][LATENCY_S] + (link[9][batch] if link[9].shape[0] > 0 else 0.0)
    last_delivery = max(last_delivery, arrival)
    now = max(departed, propagated)
    return last_delivery, now + max(0.0, last_delivery - now)


# ---- the methods ------------------------------------------------------------------------------------
@njit(cache=True)
def peak_level(puts, departures):
    """The largest backlog at the end of an instant, from the sorted times it rose and fell."""
    level, peak, i, j = 0, 0, 0, 0
    while i < puts.shape[0]:
        t = puts[i] if j >= departures.shape[0] else min(puts[i], departures[j])
        while i < puts.shape[0] and puts[i] == t:
            level, i = level + 1, i + 1
        while j < departures.shape[0] and departures[j] == t:
            level, j = level - 1, j + 1
        peak = max(peak, level)
    return peak


@njit(cache=True)
def block(n, buffer, edge, prep_s, train_s, cloud_s, has_cloud, link):
    """The sender blocks while the uplink buffer is full; see the module docstring.

    Returns (status, end_s, cloud ends, uplink busy s, peak backlog, put times, departure times)."""
    departed = np.empty(n)
    puts = np.empty(n)
    cloud_end = np.empty(n if has_cloud else 0)
    put_prev, prep_end, wire_free = 0.0, prep_s, -math.inf
    last_delivery, propagated, cloud_prev = 0.0, -math.inf, -math.inf
    busy_up = 0.0
    for b in range(n):
        if edge == EDGE_NONE:
            ready = put_prev
        elif edge == EDGE_CPU:
            ready = prep_end + train_s
        else:
            train_start = max(prep_end, put_prev) if b > 0 else prep_end
            prep_end = train_start + prep_s
            ready = train_start + train_s
        put = max(ready, departed[b - buffer]) if b >= buffer else ready
        if edge == EDGE_CPU:
            prep_end = put + prep_s
        put_prev = puts[b] = put
        wire_free, busy = transmit(link, b, max(put, wire_free))
        if math.isnan(wire_free):
            return NEED_HORIZON, 0.0, cloud_end, 0.0, 0, puts, departed
        departed[b] = wire_free
        busy_up += busy
        last_delivery, propagated = _deliver(link, b, wire_free, last_delivery, propagated)
        if has_cloud:
            cloud_prev = max(propagated, cloud_prev) + cloud_s
            cloud_end[b] = cloud_prev
    end_s = cloud_prev if has_cloud else last_delivery
    return OK, end_s, cloud_end, busy_up, peak_level(puts, departed), puts, departed


@njit(cache=True)
def drop(n, buffer, newest, edge, prep_s, train_s, cloud_s, link):
    """Hierarchical training under drop_oldest (`newest` False) or drop_newest.

    Returns (status, end_s, cloud ends, uplink busy s, peak backlog, put times, departure times,
    dropped batches, their drop times)."""
    cloud_end = np.empty(n)
    puts, departures = np.empty(n), np.empty(n)
    dropped = np.empty(n, dtype=np.int64)
    dropped_s = np.empty(n)
    queue = np.empty(buffer, dtype=np.int64)  # waiting batches (ring), the one on the wire excluded
    head, waiting, n_up, n_down, n_dropped, n_trained = 0, 0, 0, 0, 0, 0
    on_wire, wire_batch, wire_start, wire_end = False, 0, 0.0, 0.0
    put_prev, prep_end = 0.0, prep_s
    last_delivery, propagated, cloud_prev = 0.0, -math.inf, -math.inf
    busy_up, last_drop = 0.0, -math.inf
    for b in range(n + 1):
        if b < n:
            if edge == EDGE_CPU:
                train_start = prep_end
            else:
                train_start = max(prep_end, put_prev) if b > 0 else prep_end
                prep_end = train_start + prep_s
            arrival = train_start + train_s
        else:
            train_start, arrival = math.inf, math.inf  # drain the buffer
        while on_wire and (wire_end < arrival or (wire_end == arrival and wire_start <= train_start)):
            departures[n_down] = wire_end
            n_down += 1
            last_delivery, propagated = _deliver(link, wire_batch, wire_end, last_delivery, propagated)
            cloud_prev = max(propagated, cloud_prev) + cloud_s
            cloud_end[n_trained] = cloud_prev
            n_trained += 1
            if waiting > 0:
                wire_batch = queue[head]
                head, waiting = (head + 1) % buffer, waiting - 1
                wire_start = wire_end
                wire_end, busy = transmit(link, wire_batch, wire_start)
                if math.isnan(wire_end):
                    return NEED_HORIZON, 0.0, cloud_end, 0.0, 0, puts, departures, dropped, dropped_s
                busy_up += busy
            else:
                on_wire = False
        if b == n:
            break
        backlog = waiting + (1 if on_wire else 0)
        if backlog >= buffer:
            if newest or waiting == 0:
                dropped[n_dropped] = b
            else:
                dropped[n_dropped] = queue[head]
                head = (head + 1) % buffer
                queue[(head + waiting - 1) % buffer] = b
            dropped_s[n_dropped] = arrival
            n_dropped += 1
            last_drop = arrival
        else:
            puts[n_up] = arrival
            n_up += 1
            if on_wire:
                queue[(head + waiting) % buffer] = b
                waiting += 1
            else:
                on_wire, wire_batch, wire_start = True, b, arrival
                wire_end, busy = transmit(link, b, arrival)
                if math.isnan(wire_end):
                    return NEED_HORIZON, 0.0, cloud_end, 0.0, 0, puts, departures, dropped, dropped_s
                busy_up += busy
        if edge == EDGE_CPU:
            prep_end = arrival + prep_s
        put_prev = arrival
    end_s = max(cloud_prev, last_drop)
    puts, departures = puts[:n_up], departures[:n_down]
    return (OK, end_s, cloud_end[:n_trained], busy_up, peak_level(puts, departures), puts, departures,
            dropped[:n_dropped],
            dropped_s[:n_dropped])


@njit(cache=True)
def split(n, prep_s, forward_s, backward_s, cloud_s, up, down):
    """Split learning: prep, forward, up, cloud, down, backward, batch after batch.

    Returns (status, end_s, cloud ends, uplink busy s, downlink busy s, uplink put times, departure times)."""
    cloud_end = np.empty(n)
    puts, departures = np.empty(n), np.empty(n)
    now, busy_up, busy_down = 0.0, 0.0, 0.0
    up_delivery, up_propagated, down_delivery, down_propagated = 0.0, -math.inf, 0.0, -math.inf
    up_free, down_free = -math.inf, -math.inf
    for b in range(n):
        now = now + prep_s
        now = now + forward_s
        start = max(now, up_free)
        up_free, busy = transmit(up, b, start)
        if math.isnan(up_free):
            return NEED_HORIZON, 0.0, cloud_end, 0.0, 0.0, puts, departures
        busy_up += busy
        puts[b], departures[b] = now, up_free
        up_delivery, up_propagated = _deliver(up, b, up_free, up_delivery, up_propagated)
        now = up_propagated + cloud_s
        cloud_end[b] = now
        start = max(now, down_free)
        down_free, busy = transmit(down, b, start)
        if math.isnan(down_free):
            return NEED_HORIZON, 0.0, cloud_end, 0.0, 0.0, puts, departures
        busy_down += busy
        down_delivery, down_propagated = _deliver(down, b, down_free, down_delivery, down_propagated)
        now = down_propagated + backward_s
    return OK, now, cloud_end, busy_up, busy_down, puts, departures


@njit(cache=True)
def stored(n, start_s, cloud_s):
    """full_cloud's second phase: the cloud trains `n` stored batches from `start_s`."""
    cloud_end = np.empty(n)
    now = start_s
    for b in range(n):
        now = now + cloud_s
        cloud_end[b] = now
    return cloud_end
