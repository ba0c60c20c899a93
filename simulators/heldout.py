"""The held-out phrase set (``[logs] phrasing = "heldout"``): every text the plant writes, worded anew.

Written separately from the training banks (``templates.py``, ``phrases.py``,
``textual.py``), never reusing their sentences, so a model can be scored on wording it
has never seen: technician notes in another voice, CMMS work-order text
(``WO-123456 PM: replace mech seal P-101, parts: ...``), and other vendors' alarm styles
(Siemens-like numbered messages ``ALM 4021 ...``, Rockwell-like ``Fault: ...``, terse
SCADA tags ``P101/XA/BRG_T/HH``). Measured quantities keep their nouns (a vibration is
a vibration), but every sentence shape, condition word, sound, diagnosis and repair is
new. ``tests/simulators/test_textual.py`` proves no template is shared.
"""

from __future__ import annotations

HELDOUT_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "start": {
        "controller": [
            "{T} RUN CONFIRMED",
            "Unit {T} brought on line [by sequencer|by console|from field]",
            "Evt: {T} state -> RUN",
            "{T}/XS/RUN = TRUE",
            "ALM 10{n} {T} started [normally|ok]",
        ],
        "drive": ["Inverter enabled, accelerating to {rpm} min-1", "Output frequency rising to {hz} Hz", "DRV RUN cmd ack"],
    },
    "stop": {
        "controller": [
            "{T} RUN FEEDBACK LOST (normal stop)",
            "Unit {T} taken off line [by sequencer|by console|from field]",
            "Evt: {T} state -> IDLE",
            "{T}/XS/RUN = FALSE",
            "ALM 11{n} {T} shut down [normally|as requested]",
        ],
        "drive": ["Inverter disabled, decelerating", "DRV STOP cmd ack", "Output frequency at zero"],
    },
    "speed": {
        "controller": [
            "{T} SPEED TARGET NOW {to} RPM (WAS {from})",
            "Evt: {T} speed demand {pct} pct",
            "{T}/SC/SP = {to}",
        ],
        "drive": ["Freq ref now {hz} Hz", "Speed demand {rpm} min-1 accepted"],
    },
    "load": {
        "controller": [
            "{T} DUTY TARGET {pct} PCT",
            "Evt: {process} demand moved {from_pct} -> {pct} pct",
            "{T}/LC/SP = {pct}",
            "Console: {T} production target {pct} pct",
        ],
    },
    "shift": {
        "hmi": [
            "Console handover to team {crew}",
            "Team {crew} took the console[ at {hour}:00|]",
            "{name} signed on at console {n}",
            "Crew change recorded ({initials})",
        ],
    },
    "pm": {
        "cmms": [
            "WO-{wo} PM: [lubricate bearings|inspect coupling|check oil level|vibration route|change filter|IR survey] "
            "{T}, status CLOSED",
            "WO-{wo} PM {T}: routine service done, no defects",
            "PM route {n} complete for {T}, parts: none",
            "WO-{wo} PM: grease {T} ({grams} g), status CLOSED",
        ],
    },
    "status": {
        "controller": [
            "{T} run-hour meter {hours}",
            "{T} start count now {n}",
            "Watchdog ok",
            "Evt: {T} in cascade",
            "{T} kWh total {kwh}",
        ],
        "cms": ["Survey of {T} stored", "Acquisition cycle ok for {T}", "Monitor health check ok"],
    },
    "cms_idle": {"cms": ["{T} below minimum speed - no survey", "Survey deferred, {T} not turning"]},
    "trip_vib": {
        "controller": [
            "Fault: {T} shut down by vibration protection",
            "ALM 20{n} {T} VIB DANGER - UNIT TRIPPED",
            "{T}/XA/VIB/TRIP",
        ],
    },
    "trip_temp": {
        "controller": [
            "Fault: {T} shut down by temperature protection",
            "ALM 21{n} {T} OVERTEMP - UNIT TRIPPED",
            "{T}/XA/TEMP/TRIP",
        ],
        "drive": ["DRV FLT motor thermistor", "Inverter fault: motor too hot"],
    },
    "trip_elec": {
        "controller": [
            "Fault: {T} shut down by motor protection relay",
            "ALM 22{n} {T} ELECTRICAL PROTECTION - UNIT TRIPPED",
            "{T}/XA/ELEC/TRIP",
        ],
        "drive": ["DRV FLT output current asymmetry", "Inverter fault: phase missing"],
    },
    "trip_process": {
        "controller": [
            "Fault: {T} shut down by process interlock",
            "ALM 23{n} {T} PROCESS PERMISSIVE LOST - UNIT TRIPPED",
            "{T}/XA/PROC/TRIP",
        ],
    },
    "repaired": {
        "cmms": [
            "WO-{wo} CM: {T} repaired, status CLOSED",
            "WO-{wo} breakdown job on {T} finished, unit handed back",
            "{T} handed back to production by maintenance",
        ],
    },
    "obs_noise": {
        "operator": [
            "Tech note ({initials}): {T} {sound}",
            "walkdown - {sound} from {T}[, logged|, keep watching]",
            "{T} has a {sound} today",
        ],
    },
    "obs_vibration": {
        "operator": [
            "Tech note ({initials}): {T} feels lively on the frame",
            "walkdown - deck trembling beside {T}",
            "{T} guard buzzing against the frame",
        ],
    },
    "obs_hot": {
        "operator": [
            "Tech note ({initials}): {T} bearing housing reads {value} C on the IR gun",
            "walkdown - can't keep a hand on {T} frame",
            "{T} running hotter than on last walkdown",
        ],
    },
    "obs_leak": {
        "operator": [
            "Tech note ({initials}): wet drip tray under {T}",
            "walkdown - fluid trail from {T} baseplate",
            "{T} weeping at the gland follower",
        ],
    },
    "obs_grease": {
        "operator": [
            "Tech note ({initials}): lubricator on {T} shows no output",
            "walkdown - {T} grease purge looks black and crusty",
            "{T} oiler bottle near empty",
        ],
    },
    "obs_cooling": {
        "operator": [
            "Tech note ({initials}): {T} cooling air path choked with lint",
            "walkdown - {T} motor cowl packed with debris",
            "{T} cooling fan blade chipped",
        ],
    },
    "obs_power": {
        "operator": [
            "Tech note ({initials}): MCC-{n} bucket for {T} humming",
            "walkdown - lights dimmed in substation {n}",
        ],
        "controller": ["Fault: supply asymmetry {pct} pct at MCC-{n}", "ALM 30{n} bus voltage sag"],
    },
    "obs_ok": {
        "operator": [
            "Tech note ({initials}): {T} walked, nothing to report",
            "walkdown - {T} sounds and looks normal",
            "{T} checked on walkdown, fine",
        ],
    },
    "cms_band": {
        "cms": [
            "Survey {T}/{PT}: {band} now {value} {unit}, was {base} {unit}, alert at {limit}",
            "{band} growth of {pct} pct on {T} point {PT}",
            "Monitor flags {band} on {T} ({value} {unit})",
        ],
    },
    "cms_kurtosis": {
        "cms": ["Survey {T}/{PT}: impulsive signal, kurt {value}", "Monitor flags impacts on {T} ({value})"],
    },
    "cms_trend": {
        "cms": ["Survey {T}/{PT}: overall {value} mm/s, climbing", "Monitor flags rising overall level on {T} (+{pct} pct)"],
    },
    "cms_diag": {
        "cms": [
            "Expert rule on {T}: {diag} likely, {conf} pct",
            "Monitor suggests {diag} on {T} - confirm on walkdown",
            "Auto-diagnosis {T}: {diag}",
        ],
    },
    "sensor_fault": {
        "controller": ["Fault: channel {chan} signal invalid", "ALM 31{n} {chan} OUT OF SPAN", "{T}/{chan}/BAD"],
        "cms": ["Monitor: transducer at {PT} not responding", "Transducer bias fault, point {PT}"],
    },
    "comm": {
        "controller": [
            "Fault: no reply from node {n}",
            "ALM 32{n} NETWORK WATCHDOG EXPIRED",
            "Link to IO station {n} re-established",
        ],
    },
    "misc": {
        "controller": [
            "Enclosure door switch open",
            "ALM 33{n} backup supply in use",
            "Console lamp check",
            "Panel cooling fan stopped",
            "Field station {n} in local",
            "Operator acknowledged all",
        ],
    },
    # --- the text-carries-weight events (simulators/textual.py)
    "note": {
        "operator": [
            "Tech note ({initials}): {T} - {symptom}",
            "walkdown - {symptom} ({T})[, raised a notification|, will recheck|]",
            "{name}: {symptom} on {T}",
        ],
        "cmms": [
            "WO-{wo} CM request: {T} - {symptom}, priority 3",
            "WO-{wo} raised by operations for {T}: {symptom}",
        ],
    },
    "mnt_recalibrated": {
        "cmms": [
            "WO-{wo} PM: loop check {chan} on {T}, zero reset {delta}, status CLOSED",
            "WO-{wo} instrument job: {chan} ({T}) span and zero adjusted by {delta}",
        ],
    },
    "mnt_regreased": {
        "cmms": [
            "WO-{wo} PM: lubricate {T} bearings, parts: grease {grams} g, status CLOSED",
            "WO-{wo} {T} relube done per route",
        ],
    },
    "mnt_coupling": {
        "cmms": [
            "WO-{wo} CM: swap coupling insert {T}, parts: elastomer element",
            "WO-{wo} {T} flexible element changed, laser check ok",
        ],
    },
    "mnt_seal": {
        "cmms": [
            "WO-{wo} PM: replace mech seal {T}, parts: cartridge seal, O-rings",
            "WO-{wo} {T} new cartridge seal installed, no weep on restart",
        ],
    },
    "mnt_impeller": {
        "cmms": [
            "WO-{wo} MOD: reduce impeller diameter {T} by {mm} mm, parts: none",
            "WO-{wo} {T} rotor machined to new duty, reassembled",
        ],
    },
    "mis_limit_switch": {
        "controller": ["Fault: {T} position input {chan} toggling", "ALM 34{n} {T} ZS {chan} ON"],
        "clear": ["ALM 34{n} {T} ZS {chan} OFF", "{T}/{chan}/RTN"],
    },
    "mis_comm_timeout": {
        "controller": ["Fault: {T} IO station {n} lost - inputs frozen", "ALM 35{n} {T} NODE {n} NO REPLY"],
    },
    "mis_rtd_failed": {
        "controller": ["Fault: {T} temp input reads {value} C - TRIP LEVEL", "ALM 36{n} {T} TEMP {value} DEG HH"],
        "clear": ["{T} temp input open-circuit, marked bad", "ALM 36{n} {T} TEMP INPUT FAILED"],
    },
}

# Word orders of a measurement alarm per controller style (same fields as phrases.MEASURE_PATTERNS).
HELDOUT_MEASURE_PATTERNS: dict[str, list[str]] = {
    "generic": [
        "{T}/{NA}/{CA}",
        "{T}/{NA}/{CA} PV={V}",
        "Fault: {T} {N} is {C} - reads {V} {U}",
        "ALM 40{n} {T} {N} {C} [{V} {U}|]",
    ],
    "siemens": ["ALM 40{n} {T} {N} {C}", "ALM {K} {T} - {N} {C}, PV {V} {U}", "Msg no. 40{n}: {N} {C} at {T}"],
    "rockwell": ["Fault: {T} {N} {C}", "Fault: {N} {C} (PV {V} / SP {L})", "{T}:{NA}.{CA} latched"],
    "abb": ["Event {K}: {T} {N} {C}", "{T} {N} reads {V} {U} - {C}", "Evt {K} {NA}={V} {CA}"],
    "schneider": ["{T}/{NA}/{CA} PV={V}", "Fault: {T} {NA} {C}", "{T} -> {N} {C} PV={V}"],
    "cms": [
        "Survey {T}/{PT}: {N} reached {V} {U}, {LVL} set at {L}",
        "Monitor {LVL} - {N} {V} {U} on {T} ({PT})",
        "{LVL} on {T} point {PT}: {N}",
    ],
}
HELDOUT_CLEAR_PATTERNS: list[str] = [
    "{T}/{NA}/RTN",
    "Fault reset: {T} {N}",
    "{N} on {T} back inside limits",
    "ALM 40{n} {T} gone",
]
HELDOUT_CONDITIONS: dict[tuple[str, str], list[str]] = {
    ("high", "WARNING"): ["over first limit", "HIGH-1", "in alert band", "above the alert setting", "raised"],
    ("high", "ALARM"): ["over second limit", "HIGH-2", "in danger band", "above the trip setting", "extreme"],
    ("low", "WARNING"): ["under first limit", "LOW-1", "sagging", "below the alert setting"],
    ("low", "ALARM"): ["under second limit", "LOW-2", "collapsed", "below the trip setting"],
}
HELDOUT_CONDITION_ABBR: dict[tuple[str, str], list[str]] = {
    ("high", "WARNING"): ["H1", "HA", "PH"],
    ("high", "ALARM"): ["H2", "HHA", "PHH"],
    ("low", "WARNING"): ["L1", "LA", "PL"],
    ("low", "ALARM"): ["L2", "LLA", "PLL"],
}
HELDOUT_CMS_LEVELS: dict[str, list[str]] = {
    "WARNING": ["Advisory", "Level A", "Caution"],
    "ALARM": ["Action", "Level B", "Shutdown-advice"],
}
HELDOUT_SOUNDS: dict[str, list[str]] = {
    "bearing_outer_race": ["scraping", "gritty rasp", "sandpaper sound", "low rasp"],
    "bearing_inner_race": ["scraping", "gritty rasp", "sandpaper sound", "metallic chirp"],
    "cavitation": ["sound like pebbles", "fizzing", "crunching", "stones in the casing"],
    "looseness": ["clattering", "slapping", "loose clank"],
    "lubrication_loss": ["shriek", "dry squeal", "metal-on-metal chirp"],
    "misalignment": ["pulsing hum", "rhythmic thud"],
    "imbalance": ["heavy throb", "swaying hum", "pulsing drone"],
    "healthy": ["steady hum", "faint tick", "hiss", "chirp", "rattle"],
}
HELDOUT_DIAGNOSES: dict[str, list[str]] = {
    "imbalance": ["rotor mass eccentricity", "residual unbalance"],
    "misalignment": ["shaft offset", "coupling offset"],
    "looseness": ["base looseness", "bolt looseness"],
    "bearing_outer_race": ["rolling bearing damage", "outer ring spall"],
    "bearing_inner_race": ["rolling bearing damage", "inner ring spall"],
    "cavitation": ["vapour collapse", "suction starvation"],
    "lubrication_loss": ["starved bearing", "grease deficiency"],
    "overheating": ["cooling loss", "thermal overload"],
    "phase_imbalance": ["supply asymmetry", "winding asymmetry"],
    "seal_leak": ["seal degradation", "internal bypass"],
}
HELDOUT_BANDS: dict[str, list[str]] = {
    "1x": ["1 per rev", "synchronous"],
    "2x": ["2 per rev", "twice per rev"],
    "bpfo": ["outer ring tone", "BPO"],
    "bpfi": ["inner ring tone", "BPI"],
    "hf": ["HF energy", "ultrasound"],
    "axial": ["thrust direction", "Z-axis"],
    "gmf": ["tooth mesh", "mesh tone"],
}
HELDOUT_REPAIRS: dict[str, list[str]] = {
    "bearing_outer_race": ["WO-{wo} CM: renew rolling bearing on {noun}, parts: bearing 6309 C3"],
    "bearing_inner_race": ["WO-{wo} CM: renew rolling bearing on {noun}, parts: bearing 6311 C3"],
    "imbalance": ["WO-{wo} CM: trim balance on {noun} rotor, {grams} g fitted"],
    "misalignment": ["WO-{wo} CM: laser align {noun} drive train, shims adjusted"],
    "looseness": ["WO-{wo} CM: re-torque {noun} baseplate, grout repaired"],
    "cavitation": ["WO-{wo} CM: clear {noun} inlet basket, inlet valve reset"],
    "lubrication_loss": ["WO-{wo} CM: restore lube supply on {noun}, parts: lubricator cartridge"],
    "overheating": ["WO-{wo} CM: clean {noun} motor air path, parts: fan cowl"],
    "phase_imbalance": ["WO-{wo} CM: remake phase {k} termination on {noun} motor"],
    "seal_leak": ["WO-{wo} CM: replace mech seal on {noun}, parts: cartridge seal"],
}
HELDOUT_PROCESS_WORDS: dict[str, list[str]] = {
    "centrifugal_pump": ["Transfer rate", "Pumping duty"],
    "fan": ["Air volume", "Vane position"],
    "compressor": ["Air demand", "Unload ratio"],
    "induction_motor": ["Shaft duty", "Drive duty"],
    "gearbox": ["Conveyor rate", "Tonnage"],
}
HELDOUT_NOTE_SYMPTOMS: dict[str, list[str]] = {
    "bearing_outer_race": ["gritty rasp at the [coupling side|fan side] bearing", "bearing housing rasps when listened to"],
    "bearing_inner_race": ["gritty rasp at the [coupling side|fan side] bearing", "intermittent chirp from a bearing housing"],
    "imbalance": ["crud caked on the rotor", "swaying hum that follows the speed"],
    "misalignment": ["elastomer crumbs below the coupling", "coupling hub too warm to hold"],
    "looseness": ["anchor nut can be turned by hand", "baseplate moves when stood on"],
    "cavitation": ["sounds like stones in the casing", "inlet gauge needle jumping"],
    "lubrication_loss": ["lubricator cartridge still full since last month", "dry squeal when run up"],
    "overheating": ["scorched paint smell at the motor", "motor paint turned brown"],
    "phase_imbalance": ["crackle from the motor junction box", "heat marks on one cable lug"],
    "seal_leak": ["fluid running down from the seal gland", "drip tray under the seal filling up"],
}
