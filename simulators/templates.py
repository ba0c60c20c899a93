"""Whole-event log templates, per event and per source kind (controller, drive, cms, operator, hmi, cmms).

Same markup as ``phrases.py``: ``[a|b|c]`` alternatives (nestable, ``[a|]`` optional) and
``{field}`` values. Keys are the event names the log generator uses; a source kind that an
event lacks never writes it (an operator does not write a drive fault).
"""

from __future__ import annotations

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "start": {
        "controller": [
            "[Motor|Drive|{Noun}] [started|running|start complete]",
            "{T} [start command|run command|start request] "
            "[received|issued|accepted] [from DCS|from HMI|local|remote|by auto sequence|]",
            "Run feedback ON",
            "{T} RUNNING",
            "Start sequence [complete|finished], {T} in [AUTO|service|operation]",
            "{Noun} {T} [started|on]",
            "[START|Start] {T}",
        ],
        "drive": [
            "Drive [running|started], ref {rpm} rpm",
            "VFD start, ramp to {hz} Hz",
            "Ramp up to {rpm} rpm",
            "Run [FWD|forward]",
        ],
    },
    "stop": {
        "controller": [
            "[Motor|Drive|{Noun}] [stopped|stop|off]",
            "{T} STOPPED",
            "Stop command [from DCS|by operator|local|auto|]",
            "Run feedback OFF",
            "Normal stop[, coast to rest|]",
            "{T} [switched off|to standby|idle]",
            "{Noun} {T} [stopped|off]",
            "[STOP|Stop] {T}",
        ],
        "drive": ["Drive stopped [(ramp)|(coast)|]", "Ramp down complete", "Stop [via terminal|via fieldbus]"],
    },
    "speed": {
        "controller": [
            "Speed [reference|setpoint|ref|SP] [changed|set] [from {from} to {to} rpm|to {to} rpm|: {from} -> {to} rpm]",
            "{T} speed SP {to} rpm",
            "New speed [setpoint|target] {pct}%",
            "Operator changed speed SP to {pct} %",
        ],
        "drive": ["Speed reference {hz} Hz", "[Ref|Reference] changed to {rpm} rpm", "Frequency setpoint {hz} Hz"],
    },
    "load": {
        "controller": [
            "[Load|Demand] setpoint [changed|set] to {pct}%",
            "{T} [load|duty] [request|demand] {pct} %",
            "Setpoint change: {from_pct}% -> {pct}%",
            "Production rate [changed|adjusted] to {pct}%",
            "[Operator|DCS] changed setpoint [to|=] {pct}%",
            "{process} setpoint {pct}%",
        ],
    },
    "shift": {
        "hmi": [
            "Shift handover[: crew {crew} on duty|, crew {crew} took over| completed]",
            "Operator [{name}|{initials}] logged in[ at HMI| on panel {n}|]",
            "Shift {crew} start - [log reviewed|no open issues|see handover notes]",
            "[Day|Night|Late|Early] shift [started|handover]",
            "User {initials} logged on",
            "Shift change [{hour}:00|]",
        ],
    },
    "pm": {
        "cmms": [
            "PM [completed|done]: [bearing relubrication|greasing DE/NDE bearings|visual inspection|coupling inspection|"
            "oil level check|vibration route|filter change|belt tension check|thermography round]",
            "Greased [DE|NDE|both] bearing[s|] ({grams} g)",
            "WO {wo} closed - [preventive maintenance|monthly inspection|quarterly service|lubrication route]",
            "[Monthly|Weekly|Quarterly] inspection [ok|done, no findings|complete]",
            "Alignment [checked|verified], within tolerance",
            "Lubrication route done[, {T} ok|]",
            "Oil sample taken from {T}",
        ],
    },
    "status": {
        "controller": [
            "Running hours {hours} h",
            "Starts counter {n}",
            "Heartbeat OK",
            "[Auto|Remote] mode active",
            "Energy counter {kwh} kWh",
            "[Cyclic|Periodic] status: {T} [running|ok]",
            "Daily counters reset",
            "Operating hours since overhaul: {hours}",
        ],
        "cms": [
            "Data [upload|acquisition] OK",
            "Measurement [cycle|set] complete[ on {T}|]",
            "Self-test passed",
            "Baseline [updated|valid] for {T}",
        ],
    },
    "cms_idle": {
        "cms": [
            "Measurement skipped: machine [not running|speed too low]",
            "No measurement - [speed|RPM] below threshold",
            "[Machine|{T}] idle, acquisition paused",
        ],
    },
    "trip_vib": {
        "controller": [
            "TRIP: [high vibration|vibration HiHi|vib shutdown]",
            "Machine protection [trip|shutdown]: [vibration|radial vib] above danger [level|limit]",
            "{T} tripped on [high vib|vibration]",
            "[Shutdown|Trip] - vibration [HH|high high]",
        ],
    },
    "trip_temp": {
        "controller": [
            "TRIP: [bearing|winding|motor] [overtemperature|temp HiHi|over temp]",
            "[Thermal|PTC] [protection|relay] tripped",
            "Motor protection: thermal overload",
            "{T} tripped on [high temperature|over-temperature]",
        ],
        "drive": ["Motor overtemperature fault", "Motor thermal protection [fault|trip]", "External temperature fault"],
    },
    "trip_elec": {
        "controller": [
            "TRIP: [phase unbalance|phase loss|current unbalance]",
            "[Overcurrent|Overload] trip",
            "Protection relay [46|NPS|unbalance] operated",
            "{T} tripped[: electrical fault| by MCC relay]",
        ],
        "drive": ["Output phase loss", "[Overcurrent|Overload] fault", "Motor phase [loss|unbalance] fault"],
    },
    "trip_process": {
        "controller": [
            "TRIP: [low discharge pressure|low flow|dry run protection]",
            "[Seal leak|Leak] detector [tripped|activated]",
            "Low [suction|inlet] pressure trip",
            "{T} tripped on [process interlock|low pressure|low flow]",
        ],
    },
    "repaired": {
        "cmms": [
            "WO {wo} closed - corrective maintenance",
            "Returned to service after repair",
            "Repair complete, {T} released to operation",
            "{T} back in service[ after breakdown|]",
            "Breakdown WO {wo} completed",
        ],
    },
    "obs_noise": {
        "operator": [
            "{T}: [noticed|heard] [a|an|] {sound} [from|at|near] [the|] "
            "[DE|NDE|drive end|pump end|motor|casing] [bearing|housing|]",
            "[Unusual|Strange|Abnormal|Odd] [noise|sound] on {T}, {sound}",
            "round: {T} {sound}, [will monitor|WO raised|informed maintenance|to be checked]",
            "{sound} [noise|sound] [coming from|at] {T}[, please check|]",
            "{T} making [a|] {sound} [noise|sound]",
        ],
    },
    "obs_vibration": {
        "operator": [
            "{T} [running rough|shaking|vibrating more than usual]",
            "Base [feels|seems] [shaky|loose] on {T}",
            "[Guard|Coupling guard|Cover] rattling on {T}",
            "felt vibration on [pipework|platform|handrail] near {T}",
        ],
    },
    "obs_hot": {
        "operator": [
            "{T} [housing|motor|bearing cap|motor frame] [hot to touch|very warm|too hot to touch]",
            "[Smell|Odour] of [burning|hot varnish|hot oil] near {T}",
            "IR gun: [DE bearing|motor frame|bearing cap] {value} C",
            "{T} [seems|feels] [hotter|warmer] than [usual|normal]",
        ],
    },
    "obs_leak": {
        "operator": [
            "[Drip|Leak|Drips] [from|at] [mechanical seal|seal|gland|flange|drain line] on {T}",
            "[puddle|pool] under {T}",
            "[Oil|Water|Product] on the floor near {T}",
            "seal flush [leaking|weeping] on {T}",
            "{T}: [small|minor|visible] leak at [seal|gland|flange]",
        ],
    },
    "obs_grease": {
        "operator": [
            "[Grease|Oil] [level low|reservoir empty|cup empty] on {T}",
            "auto-lubricator [empty|not dispensing|LED red] on {T}",
            "[Dry|Discoloured|Dark] grease at purge on {T}",
            "oil [sight glass|level] [low|below min] on {T}",
        ],
    },
    "obs_cooling": {
        "operator": [
            "Cooling [fan|fins] [clogged|dirty|damaged] on {T}",
            "[Air intake|Fan cowl] [blocked|covered|full of dust] on {T}",
            "{T} motor fan [not turning|noisy|broken blade]",
            "[Lots of|Heavy] dust on {T} motor",
        ],
    },
    "obs_power": {
        "operator": [
            "[Voltage|Supply] [dip|sag|unbalance] [reported|seen] on MCC-{n}",
            "MCC [breaker|contactor] for {T} [warm|buzzing]",
            "[Lights flickered|Power blip] in [e-house|MCC room]",
        ],
        "controller": [
            "Voltage unbalance {pct}% on MCC-{n}",
            "Supply [undervoltage|voltage dip] [detected|warning]",
            "Mains [phase|voltage] asymmetry",
        ],
    },
    "obs_ok": {
        "operator": [
            "Round done, {T} [ok|normal|no findings]",
            "Checked {T}: [nothing unusual|all normal|no leaks]",
            "{T} [inspected|walked down], [ok|fine]",
            "[Rounds|Route] complete - no [issues|abnormalities]",
        ],
    },
    "cms_band": {
        "cms": [
            "{PT} {band} [amplitude|level] {value} {unit} [exceeds|above] [alert|alarm] ({limit} {unit})",
            "[Alert|Alarm]: {band} band on {T} {PT} = {value} {unit}",
            "Spectral band '{band}' [rising|increased] +{pct}% [vs baseline|in 24 h|since last week]",
            "{T} {PT} {band}: {value} {unit} (baseline {base} {unit})",
            "Band alarm [{band}|'{band}'] at {PT}",
        ],
    },
    "cms_kurtosis": {
        "cms": [
            "[Impulsiveness|Kurtosis|Crest factor] [high|increased] on {T} ({value})",
            "Impacting detected [at|on] {PT}",
            "Shock pulse [level|dBm] [elevated|high] on {T}",
            "[Kurtosis|Crest] {value} at {PT} [above|exceeds] threshold",
        ],
    },
    "cms_trend": {
        "cms": [
            "Overall [velocity|vibration] trend [rising|increasing] on {T}: {value} mm/s",
            "Trend alert: {T} {PT} [+{pct}%|changed]",
            "{T}: [overall|RMS] level up {pct}% vs baseline",
            "Rate of change alert on {PT}",
        ],
    },
    "cms_diag": {
        "cms": [
            "[Diagnosis|Analysis|Rule-based diagnosis]: [possible|probable|suspected] {diag} [on|at] {T}[ ({conf}% confidence)|]",
            "Recommend [inspection|checking] for {diag}[ on {T}|]",
            "Advisory: {diag} indicated - [plan inspection|verify on next route]",
            "{T}: pattern consistent with {diag}",
        ],
    },
    "sensor_fault": {
        "controller": [
            "[AI|Analog input] {chan} [wire break|open circuit|out of range|bad quality]",
            "[RTD|PT100|Transmitter] {chan} [open circuit|short|fault]",
            "Signal {chan} [frozen|not updating]",
            "Module {n} channel {k} fault",
            "{chan} [quality BAD|value invalid]",
        ],
        "cms": ["Sensor [bias|BOV] out of range at {PT}", "Cable fault on {PT}", "Accelerometer {PT} [not OK|fault]"],
    },
    "comm": {
        "controller": [
            "[Communication|Comms] [timeout|lost|failure] [with|to] [remote IO|RIO {n}|drive|CMS gateway]",
            "Profinet device {n} [failure|not reachable]",
            "Modbus [timeout|CRC error] slave {n}",
            "[Connection|Comms] restored",
            "Fieldbus [error|diagnostic alarm] node {n}",
        ],
    },
    "misc": {
        "controller": [
            "Cabinet door open",
            "UPS on battery",
            "E-stop test [performed|OK]",
            "[Low|High] temperature in [MCC room|e-house]",
            "Panel fan [failure|fault]",
            "Lamp test",
            "Local/remote switch [LOCAL|REMOTE]",
            "Trip reset by operator",
            "Emergency stop [pressed|released]",
            "Battery low [in|on] CPU",
        ],
    },
}
