"""Phrase banks for log text: many ways to say each event, as controllers, drives, condition
monitors, operators and maintenance systems say them.

Whole-event templates are in ``templates.py``. Phrases use ``[a|b|c]`` for alternatives
(``[a|]`` for an optional word), nested freely, and ``{field}`` for values filled in by
``logtext.Renderer``. Measurement alarms are composed from a
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
