"""Phrase banks for log text: many ways to say each event, as controllers, drives, condition
monitors, operators and maintenance systems say them.

Templates use ``[a|b|c]`` for alternatives (``[a|]`` for an optional word), nested freely, and
``{field}`` for values filled in by ``logtext.render``. Measurement alarms are composed from a
noun bank, a condition bank and a word-order pattern per vendor style, so one event has
hundreds of surface forms; the same words also appear on healthy assets (nuisance alarms,
false reports), so no string identifies a fault on its own.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Measurements: noun phrases, abbreviations (for tag-like texts), units, and which side is bad
# ---------------------------------------------------------------------------------------------

MEASURES: dict[str, dict[str, list[str] | str]] = {
    "vib": {
        "nouns": [
            "vibration",
            "overall vibration",
            "radial vibration",
            "vibration velocity",
            "bearing housing vibration",
            "DE vibration",
            "machine vibration",
            "velocity RMS",
            "vib level",
            "[horizontal|vertical] vibration",
        ],
        "abbr": ["VIB", "VIB_RMS", "VT01", "VIBR", "V_RMS", "XT"],
        "units": ["mm/s", "mm/s", "mm/sec", "mm/s RMS", "mm s-1"],
        "side": "high",
    },
    "bearing_temp": {
        "nouns": [
            "bearing temperature",
            "DE bearing temperature",
            "bearing temp",
            "brg temp",
            "drive end bearing temp",
            "bearing RTD",
            "[DE|NDE] bearing [temp|temperature]",
            "bearing metal temperature",
        ],
        "abbr": ["BRG_TMP", "TT_BRG", "BRG_T", "TE02", "BRGTEMP"],
        "units": ["°C", "degC", "C", "deg C"],
        "side": "high",
    },
    "winding_temp": {
        "nouns": [
            "winding temperature",
            "stator temperature",
            "motor winding temp",
            "stator winding temp",
            "motor temperature",
            "[PT100|PTC] winding",
            "thermal model [level|%]",
        ],
        "abbr": ["WDG_TMP", "WDG_T", "TT_WDG", "MOT_TEMP", "STATOR_T"],
        "units": ["°C", "degC", "C", "deg C"],
        "side": "high",
    },
    "oil_temp": {
        "nouns": ["oil temperature", "oil temp", "lube oil temperature", "sump temperature", "gear oil temp"],
        "abbr": ["OIL_TMP", "TT_OIL", "OILT"],
        "units": ["°C", "degC", "C"],
        "side": "high",
    },
    "disch_temp": {
        "nouns": [
            "discharge temperature",
            "element outlet temperature",
            "airend discharge temp",
            "disch temp",
            "compressor outlet temperature",
        ],
        "abbr": ["DISCH_T", "TT_DIS", "ELEM_OUT_T"],
        "units": ["°C", "degC", "C"],
        "side": "high",
    },
    "current_unbalance": {
        "nouns": [
            "current unbalance",
            "current imbalance",
            "phase current unbalance",
            "phase unbalance",
            "current asymmetry",
            "negative sequence current",
            "I unbalance",
        ],
        "abbr": ["I_UNBAL", "CUR_UNB", "PH_UNB", "I2"],
        "units": ["%", "%", "pct"],
        "side": "high",
    },
    "current_high": {
        "nouns": ["motor current", "current", "load current", "motor load", "stator current"],
        "abbr": ["I_MOT", "CURR", "IA", "OL"],
        "units": ["A", "A", "amps", "% FLA"],
        "side": "high",
    },
    "pressure_low": {
        "nouns": ["discharge pressure", "outlet pressure", "header pressure", "delivery pressure", "line pressure"],
        "abbr": ["PT_DIS", "P_OUT", "PRESS", "PT01"],
        "units": ["bar", "barg", "bar g"],
        "side": "low",
    },
    "suction_low": {
        "nouns": ["suction pressure", "inlet pressure", "NPSH margin", "suction [press|pressure]"],
        "abbr": ["PT_SUC", "P_IN", "PSUC"],
        "units": ["bar", "barg"],
        "side": "low",
    },
    "flow_low": {
        "nouns": ["flow", "flow rate", "throughput", "delivery flow", "FT reading"],
        "abbr": ["FT01", "FLOW", "Q_ACT", "FIC"],
        "units": ["m3/h", "m³/h", "m3/hr"],
        "side": "low",
    },
}

CONDITIONS: dict[tuple[str, str], list[str]] = {
    ("high", "WARNING"): [
        "high",
        "high",
        "HI",
        "H",
        "above warning limit",
        "warning",
        "pre-alarm",
        "alert",
        "elevated",
        "exceeds alert level",
        "above normal",
    ],
    ("high", "ALARM"): [
        "high high",
        "HIHI",
        "HH",
        "above alarm limit",
        "alarm",
        "danger",
        "exceeds danger level",
        "very high",
        "critical",
    ],
    ("low", "WARNING"): ["low", "low", "LO", "L", "below setpoint", "below normal", "low warning", "dropping"],
    ("low", "ALARM"): ["low low", "LOLO", "LL", "below alarm limit", "very low", "critical low"],
}
CONDITION_ABBR: dict[tuple[str, str], list[str]] = {
    ("high", "WARNING"): ["HI", "H", "WARN", "ALM_H"],
    ("high", "ALARM"): ["HIHI", "HH", "ALM_HH", "TRIP_PRE"],
    ("low", "WARNING"): ["LO", "L", "WARN_L"],
    ("low", "ALARM"): ["LOLO", "LL", "ALM_LL"],
}

# Word orders of a measurement alarm per controller style. N noun, C condition, NA/CA abbreviations,
# V value, U unit, L limit, T asset tag, K code.
MEASURE_PATTERNS: dict[str, list[str]] = {
    "generic": [
        "{N} {C}",
        "{T} {N} {C}",
        "{N} {C}: {V} {U}",
        "{T} {NA} {CA} {V}{U}",
        "{C} {N} on {T} ({V} {U}, limit {L} {U})",
        "{T}: {N} {V} {U} > {L} {U}",
        "[Warning|Alarm]: {N} {C}",
        "{N} [is|] {C} at {V} {U}",
    ],
    "siemens": [
        "{T}: {N} {C}",
        "{T}.{NA}_{CA}",
        "[Message|Msg] {K}: {N} {C} ({V} {U})",
        "{T} - {C}: {N} = {V} {U}",
        "{N} {C} ({T})",
        "[Stoerung|Warnung|Warning] {T}: {N} {C}",
    ],
    "rockwell": [
        "{T}_{NA}_{CA}",
        "{T} {N} {C} [Alarm|Alm]",
        "{N} {C} - Value: {V} Limit: {L}",
        "{T}.{NA}.{CA} = 1",
        "{C} {N} {T} [({V} {U})|]",
    ],
    "abb": [
        "{K} {N} {C}",
        "[Warning|Alarm] {K}: {N} [{C}|]",
        "{T} {N} {C}, actual {V} {U}",
        "{N} {C} (par. {P})",
        "{K} {NA} {CA}",
    ],
    "schneider": ["{T} {NA} {CA}", "{K} {N} {C} val={V}", "{N} {C} on {T}", "[Alarm|Alrm] {T} {N} {C} {V} {U}"],
    "cms": [
        "{PT} {N} {V} {U} [exceeds|above] {LVL} [level|limit] ({L} {U})",
        "{LVL}: {N} at {PT} = {V} {U}",
        "[{T} |]{PT}: {N} {LVL} [{V} {U}|]",
        "{N} {LVL} on {T} [{PT}|]: {V} {U} (limit {L})",
    ],
}
CLEAR_PATTERNS: list[str] = [
    "{N} [back to normal|returned to normal|normal]",
    "{N} {C} cleared",
    "RTN {T} {NA}",
    "[Alarm|Warning] cleared: {N}",
    "{T} {NA}_{CA} [went|] inactive",
    "{N} OK",
]
CMS_LEVELS: dict[str, list[str]] = {
    "WARNING": ["Alert", "ALERT", "Warning", "Stage 1"],
    "ALARM": ["Danger", "ALARM", "Alarm", "Stage 2"],
}
CMS_POINTS: list[str] = ["DE-H", "DE-V", "NDE-H", "DE-A", "P1H", "M1H", "MDE", "PDE", "point 1", "BRG1"]

# ---------------------------------------------------------------------------------------------
# Events described by whole templates, per source kind
# ---------------------------------------------------------------------------------------------

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

# What operators say a machine sounds like, per cause (deliberately overlapping), and on a healthy machine.
SOUNDS: dict[str, list[str]] = {
    "bearing_outer_race": ["grinding", "rumbling", "growling", "rough", "ticking", "whining"],
    "bearing_inner_race": ["grinding", "rumbling", "growling", "rough", "high-pitched whine", "clicking"],
    "cavitation": ["crackling", "gravel-like", "popping", "rattling", "hissing", "marbles"],
    "looseness": ["knocking", "rattling", "banging", "clunking", "thumping"],
    "lubrication_loss": ["squealing", "screeching", "whining", "dry grinding"],
    "misalignment": ["humming", "thumping", "droning"],
    "imbalance": ["droning", "rumbling", "wobbling", "humming"],
    "healthy": ["humming", "buzzing", "clicking", "squeaking", "rattling", "whining", "ticking"],
}

# Condition-monitoring diagnoses, per cause; a CMS is often only approximately right.
DIAGNOSES: dict[str, list[str]] = {
    "imbalance": ["unbalance", "rotor imbalance", "mass unbalance", "impeller imbalance"],
    "misalignment": ["misalignment", "coupling misalignment", "angular misalignment", "shaft misalignment"],
    "looseness": ["mechanical looseness", "structural looseness", "soft foot", "loose mounting"],
    "bearing_outer_race": ["bearing defect", "outer race defect", "bearing wear", "rolling element bearing fault"],
    "bearing_inner_race": ["bearing defect", "inner race defect", "bearing wear", "rolling element bearing fault"],
    "cavitation": ["cavitation", "flow turbulence", "NPSH problem", "recirculation"],
    "lubrication_loss": ["lubrication problem", "insufficient lubrication", "dry running bearing", "lube deficiency"],
    "overheating": ["thermal problem", "cooling deficiency", "motor overheating"],
    "phase_imbalance": ["electrical fault", "supply unbalance", "stator fault"],
    "seal_leak": ["seal wear", "internal leakage", "seal problem"],
}
CONFUSED_WITH: dict[str, list[str]] = {
    "imbalance": ["looseness", "misalignment"],
    "misalignment": ["imbalance", "looseness"],
    "looseness": ["imbalance", "misalignment"],
    "bearing_outer_race": ["bearing_inner_race", "lubrication_loss"],
    "bearing_inner_race": ["bearing_outer_race", "lubrication_loss"],
    "cavitation": ["bearing_outer_race", "looseness"],
    "lubrication_loss": ["bearing_outer_race", "bearing_inner_race"],
    "overheating": ["phase_imbalance"],
    "phase_imbalance": ["overheating"],
    "seal_leak": ["cavitation"],
}

BANDS: dict[str, list[str]] = {
    "1x": ["1X", "1x RPM", "running speed", "1xTS", "1×"],
    "2x": ["2X", "2x RPM", "twice running speed", "2xTS", "2×"],
    "bpfo": ["BPFO", "outer race frequency", "bearing band (outer)", "env band 1", "BPFO env"],
    "bpfi": ["BPFI", "inner race frequency", "bearing band (inner)", "env band 2", "BPFI env"],
    "hf": ["HFD", "high-frequency band", "HF 2-10 kHz", "spike energy", "gSE", "acoustic emission"],
    "axial": ["axial", "axial velocity", "A-direction", "axial 1X/2X"],
    "gmf": ["GMF", "gear mesh", "mesh frequency band"],
}

REPAIRS: dict[str, list[str]] = {
    "bearing_outer_race": ["[Replaced|Changed] [DE|NDE] bearing", "Bearing replaced, [run-in OK|vib check OK]"],
    "bearing_inner_race": ["[Replaced|Changed] [DE|NDE] bearing", "New bearing fitted, [run-in OK|checked]"],
    "imbalance": [
        "[Rebalanced|Balanced] [impeller|rotor|fan wheel] ({grams} g added)",
        "Cleaned [buildup|deposits] from [impeller|blades]",
    ],
    "misalignment": ["Coupling [realigned|aligned] [(laser)|(dial)], [offset|angular] corrected", "Realigned motor to {noun}"],
    "looseness": ["[Retorqued|Tightened] [foundation|hold-down|base] bolts", "Soft foot corrected, shims added"],
    "cavitation": [
        "[Cleaned|Cleared] suction strainer",
        "Suction valve found [throttled|partly closed], opened",
        "Vent line cleared",
    ],
    "lubrication_loss": [
        "Relubricated, auto-lubricator [replaced|refilled]",
        "Lube line [unblocked|repaired]",
        "Oil changed and topped up",
    ],
    "overheating": ["[Cleaned cooling fins|Replaced cooling fan|Cleared blocked air intake]", "Motor cooling restored"],
    "phase_imbalance": [
        "[Tightened|Replaced] [terminal|cable lug|contactor] on phase L{k}",
        "Fuse L{k} replaced",
        "Motor [megger|IR] test OK after terminal repair",
    ],
    "seal_leak": ["Mechanical seal replaced", "[Seal|Packing] [replaced|renewed]", "Shaft seal renewed, no leak"],
}

PROCESS_WORDS: dict[str, list[str]] = {
    "centrifugal_pump": ["Flow", "Pump flow", "FIC"],
    "fan": ["Damper", "Airflow", "Draft"],
    "compressor": ["Load", "Capacity", "Demand"],
    "induction_motor": ["Load", "Torque"],
    "gearbox": ["Throughput", "Belt load", "Feed rate"],
}

NAMES: list[str] = [
    "J. Smith",
    "M. Garcia",
    "A. Novak",
    "K. Tanaka",
    "R. Okafor",
    "L. Meyer",
    "S. Rossi",
    "P. Kowalski",
    "D. Chen",
    "H. Jensen",
    "F. Silva",
    "T. Nguyen",
]

# Vendor identity: source names per source kind, and how codes look.
SOURCES: dict[str, dict[str, list[str]]] = {
    "siemens": {"controller": ["S7-1500", "PLC_1", "WinCC"], "drive": ["SINAMICS G120", "SINAMICS S120"], "hmi": ["WinCC"]},
    "rockwell": {"controller": ["ControlLogix", "CLX_L83", "FTView"], "drive": ["PowerFlex 755", "PF525"], "hmi": ["FTView SE"]},
    "abb": {"controller": ["AC500", "800xA"], "drive": ["ACS880", "ACS580"], "hmi": ["800xA"]},
    "schneider": {"controller": ["M580", "M340"], "drive": ["ATV930", "ATV630"], "hmi": ["Vijeo", "AVEVA"]},
    "generic": {"controller": ["PLC", "plc01", "DCS"], "drive": ["VFD", "drive"], "hmi": ["SCADA", "HMI"]},
}
OTHER_SOURCES: dict[str, list[str]] = {
    "cms": ["CMS", "cms-gw1", "vibration monitor", "CM unit", "IMx-8", "OnlineCM"],
    "operator": ["operator", "logbook", "shift-log", "rounds"],
    "cmms": ["CMMS", "maint", "work-orders"],
}

# Schneider Altivar-style mnemonics for drive events (others get numeric codes).
SCHNEIDER_CODES: dict[str, str] = {
    "trip_temp": "OHF",
    "trip_elec": "OPF1",
    "current_high": "OLF",
    "current_unbalance": "PHF",
    "winding_temp": "OTFL",
    "comm": "CNF",
    "sensor_fault": "ANF",
}
