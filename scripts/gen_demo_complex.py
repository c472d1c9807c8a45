#!/usr/bin/env python3
"""Generates scenes/demo-complex.ron, the demo smart industrial complex.

    python3 scripts/gen_demo_complex.py            # writes scenes/demo-complex.ron
    python3 scripts/gen_demo_complex.py --report   # also prints the capacity tables

Everything that must stay consistent is computed here rather than typed twice: station
positions and AGV path nodes from the factory grid, the road network from the site plan,
staff pool sizes from the crews that need them, and, above all, the load of every
station. For each station the script adds up the work the arrival rates send to it
(mean processing time x visits, with upstream scrap taken out, plus the expected
changeovers), divides by what the station can give (servers x availability x share of
the week on shift) and refuses to write a scene in which any station would run above
MAX_RHO. That keeps a simulated week free of runaway WIP while leaving the bottlenecks
close enough together that they move when a machine breaks or a shift ends.

Only the Python standard library is used. Edit the tables below, run the script, and
commit both this file and the scene it writes.
"""

import math
import os
import sys

# ---------------------------------------------------------------------------------------
# Global knobs
# ---------------------------------------------------------------------------------------

MAX_RHO = 0.85  # no station may be planned above this load (weekly average, on-shift time)
WEEK_H = 168.0

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenes", "demo-complex.ron")

# Site grid: 4 columns x 2 rows of halls, 96 m x 60 m each, 34 m streets between columns
# and a 40 m central avenue (y = 110) between the rows. Hub (warehouse + supplier gate)
# at the west end of the avenue.
HALL_W, HALL_D = 96.0, 60.0
COL_X = [100.0 + 130.0 * i for i in range(4)]  # south-west corner x of each column
ROW_Y = [30.0, 130.0]  # south-west corner y of each row
AVENUE_Y = 110.0
STREET_X = [83.0 + 130.0 * k for k in range(5)]  # north-south streets west of / between halls
PERIM_Y = [10.0, 210.0]  # southern and northern perimeter roads
HUB = (30.0, 110.0)


# ---------------------------------------------------------------------------------------
# Durations and distributions (all times in seconds here)
# ---------------------------------------------------------------------------------------

def dur(sec):
    """Formats seconds as a scene duration string ("45s", "2m 30s", "6h", "1.5h")."""
    if sec <= 0:
        return "0s"
    if sec >= 3600 and sec % 3600 == 0:
        return f"{int(sec // 3600)}h"
    if sec >= 3600 and sec % 60 == 0:
        h, m = divmod(int(sec // 60), 60)
        return f"{h}h {m}m"
    if sec >= 60 and sec % 60 == 0:
        return f"{int(sec // 60)}m"
    if sec >= 60 and float(sec).is_integer():
        m, s = divmod(int(sec), 60)
        return f"{m}m {s}s"
    if float(sec).is_integer():
        return f"{int(sec)}s"
    return f"{sec:g}s"


class D:
    """A distribution: its RON spelling and its mean in seconds."""

    def __init__(self, ron, mean):
        self.ron, self.mean = ron, mean


def Tri(a, m, b):
    return D(f'Tri(min: "{dur(a)}", mode: "{dur(m)}", max: "{dur(b)}")', (a + m + b) / 3.0)


def LogN(mean, sd):
    return D(f'LogNormal(mean: "{dur(mean)}", sd: "{dur(sd)}")', mean)


def Norm(mean, sd):
    return D(f'Normal(mean: "{dur(mean)}", sd: "{dur(sd)}")', mean)


def Exp(mean):
    return D(f'Exp(mean: "{dur(mean)}")', mean)


def Const(v):
    return D(f'Const("{dur(v)}")', v)


def Unif(a, b):
    return D(f'Uniform(min: "{dur(a)}", max: "{dur(b)}")', (a + b) / 2.0)


H = 3600.0
M = 60.0

# ---------------------------------------------------------------------------------------
# Shift calendars. t = 0 is SUNDAY 00:00: the run's week starts on a Sunday as on a wall
# calendar, so a 7-day run starts and ends in a weekend and day 1 and day 7 carry the
# same kind of weekend backlog in the factories that stop on weekends.
# ---------------------------------------------------------------------------------------

def week_shifts(first_start_h, count, length_h=8.0):
    return [(first_start_h + i * length_h, first_start_h + (i + 1) * length_h) for i in range(count)]


CALENDARS = {
    # Continuous operation, four crews rotating over three 8-hour shifts, 365 days.
    "cont": dict(period=24 * H, shifts=[(0, 8), (8, 16), (16, 24)],
                 why="continuous 3x8 with four rotating crews (battery cells, packaging fab); never stops"),
    # Three shifts Sunday 22:00 to Saturday 22:00: six days, the Saturday late shift is the last.
    "3x8-6d": dict(period=WEEK_H * H, shifts=week_shifts(22, 18),
                   why="three shifts Mon-Sat (Sunday-night shift starts the week at 22:00, Saturday 22:00 ends it)"),
    # Three shifts Monday 06:00 to Saturday 06:00: five days.
    "3x8-5d": dict(period=WEEK_H * H, shifts=week_shifts(30, 15),
                   why="three shifts Mon 06:00 - Sat 06:00, weekend off"),
    # Two shifts 06:00-14:00 and 14:00-22:00, Monday to Friday.
    "2x8-5d": dict(period=WEEK_H * H,
                   shifts=[s for d in range(1, 6) for s in ((d * 24 + 6, d * 24 + 14), (d * 24 + 14, d * 24 + 22))],
                   why="two shifts 06:00-22:00 Mon-Fri, nights and weekend off"),
}


def on_share(cal):
    if cal is None:
        return 1.0
    c = CALENDARS[cal]
    return sum(b - a for a, b in c["shifts"]) * H / c["period"]


# ---------------------------------------------------------------------------------------
# Factories
#
# Each factory: stations (in flow order; the order also decides the floor layout: the
# first half along the south wall west to east, the rest along the north wall east to
# west, a U-shaped flow), products with routings, a source, a staff pool and an AGV fleet.
#
# Station fields: id suffix, name, kind, servers, buffer, (mtbf h, mttr min), scrap,
# power (busy, idle, setup, down, off kW per server), crew per server, setup dist or None,
# calendar ("fac" = the factory's, None = runs around the clock), agv (has an AGV node),
# comment.
# ---------------------------------------------------------------------------------------

def S(sid, name, kind, servers=1, buffer=4, fail=None, scrap=0.0, power=(10, 2, None, 1, 0.5),
      crew=0, setup=None, cal="fac", agv=False, why=""):
    return dict(sid=sid, name=name, kind=kind, servers=servers, buffer=buffer, fail=fail, scrap=scrap,
                power=power, crew=crew, setup=setup, cal=cal, agv=agv, why=why)


def step(op, at, time, why=""):
    return dict(op=op, at=at if isinstance(at, list) else [at], time=time, why=why)


FACTORIES = []

# ---- 1. Secondary-battery cells --------------------------------------------------------
FACTORIES.append(dict(
    id="bat", name="CellWorks battery-cell plant", industry="secondary-battery cells",
    col=0, row=0, calendar="cont", staff_cal="cont",
    unit="one tray of pouch cells (12 NCM or 8 LFP cells); electrode steps are per tray-equivalent of electrode",
    stations=[
        S("mix_n", "NCM slurry mixer", "Machine", 1, 6, (80, 45), 0.004, (75, 12, None, 4, 2), 1,
          why="planetary mixer dedicated to NCM so no chemistry flush is needed; seals wear -> MTBF ~80 h"),
        S("mix_l", "LFP slurry mixer", "Machine", 1, 6, (80, 45), 0.004, (70, 12, None, 4, 2), 1),
        S("coat1", "Electrode coater + dryer 1", "Oven", 1, 6, (36, 60), 0.008, (260, 140, 180, 60, 40), 1,
          setup=Tri(30, 45, 90),
          why="roll-to-roll slot-die coater with a 60 m drying oven: the oven stays hot when idle (140 kW); "
              "web breaks and die clogging ~ every 36 h, 1 h to re-thread; coating-weight recipe change 30-90 s"),
        S("coat2", "Electrode coater + dryer 2", "Oven", 1, 6, (36, 60), 0.008, (260, 140, 180, 60, 40), 1,
          setup=Tri(30, 45, 90)),
        S("cal", "Roll press (calender)", "Machine", 1, 4, (60, 40), 0.004, (90, 15, None, 5, 2), 1,
          why="roll changes and bearing faults"),
        S("slit", "Slitter / laser notcher", "Machine", 2, 4, (50, 30), 0.006, (35, 6, None, 2, 1), 0, agv=True,
          why="laser notching, burr rejects ~0.6%"),
        S("stack1", "Z-fold stacker 1", "RobotCell", 1, 3, (30, 20), 0.005, (18, 4, 8, 1, 0.5), 0,
          setup=Tri(45, 60, 120), agv=True,
          why="high-speed Z-fold stacking robot cell; separator jams ~ every 30 h; electrode size change 1-2 min"),
        S("stack2", "Z-fold stacker 2", "RobotCell", 1, 3, (30, 20), 0.005, (18, 4, 8, 1, 0.5), 0,
          setup=Tri(45, 60, 120), agv=True),
        S("stack3", "Z-fold stacker 3", "RobotCell", 1, 3, (30, 20), 0.005, (18, 4, 8, 1, 0.5), 0,
          setup=Tri(45, 60, 120), agv=True),
        S("tabw", "Ultrasonic tab welder", "RobotArm", 2, 4, (40, 15), 0.004, (6, 1, None, 0.5, 0.2), 0,
          why="two robot arms with ultrasonic horns; horn wear"),
        S("pouch", "Pouch forming & sealing", "Machine", 2, 4, (45, 25), 0.006, (30, 8, None, 2, 1), 1,
          setup=Tri(60, 90, 150), why="pouch depth die change when the cell format changes"),
        S("fill1", "Electrolyte filling 1", "Machine", 1, 4, (40, 30), 0.005, (25, 8, None, 2, 1), 0, agv=True,
          why="vacuum filling in the dry room; nozzle clogging"),
        S("fill2", "Electrolyte filling 2", "Machine", 1, 4, (40, 30), 0.005, (25, 8, None, 2, 1), 0, agv=True),
        S("form", "Formation racks", "Oven", 180, 40, (200, 90), 0.0, (0.45, 0.05, None, 0.02, 0.02), 0,
          cal=None, agv=True,
          why="180 tray channels of bidirectional cyclers (regenerative, so ~0.45 kW net per tray); "
              "a rack controller fault stops the whole bank rarely (MTBF 200 h, 1.5 h)"),
        S("degas", "Degassing & final seal", "Machine", 1, 6, (40, 20), 0.004, (22, 6, None, 2, 1), 1,
          why="vacuum degassing chamber"),
        S("age", "High-temperature aging room", "Oven", 360, 40, None, 0.0, (0.06, 0.03, None, 0.0, 0.03), 0,
          cal=None, agv=True,
          why="45 degC aging shelves, 360 tray places; HVAC share per tray ~60 W"),
        S("grade", "OCV/IR grading", "Inspection", 2, 6, (120, 30), 0.03, (5, 1.5, None, 0.5, 0.2), 0, agv=True,
          why="formation/aging rejects are found here: 3% of trays fail OCV drift or IR limits "
              "(the industry's 2-4% formation scrap)"),
        S("xray", "Inline CT / X-ray", "Inspection", 1, 6, (150, 45), 0.005, (12, 4, None, 1, 0.5), 0,
          why="overhang / alignment check"),
        S("pack", "Tray packing & labelling", "Packing", 2, 8, (150, 15), 0.0, (4, 1, None, 0.2, 0.1), 1,
          agv=True),
        S("rework", "Cell rework bench", "Assembly", 1, 6, (500, 30), 0.01, (2, 0.3, None, 0, 0), 1,
          why="LFP trays: flagged cells are swapped for spares; 1% of trays cannot be saved"),
    ],
    products=[
        dict(id="ncm60", name="NCM pouch cell 60 Ah (tray of 12)", weight=9.0, price=300.0, material_cost=205.0,
             materials={"ncm-cathode": 1, "separator": 1},
             why="12 x 0.22 kWh = 2.6 kWh at ~115 EUR/kWh; cathode active material dominates the bill",
             routing="cells_ncm"),
        dict(id="lfp100", name="LFP pouch cell 100 Ah (tray of 8)", weight=6.0, price=220.0, material_cost=154.0,
             materials={"separator": 1},
             why="8 x 0.32 kWh = 2.6 kWh at ~85 EUR/kWh (LFP is cheaper per kWh)",
             routing="cells_lfp"),
    ],
    source_rate=None,  # set from the product weights and FACTORY_RATE below
))

FACTORIES.append(dict(
    id="aut", name="Mobility Parts auto components", industry="auto parts & EV battery modules",
    col=0, row=1, calendar="3x8-6d", staff_cal="3x8-6d",
    unit="one part (caliper, knuckle) or one battery module",
    stations=[
        S("cast_in", "Casting receiving & X-ray", "Inspection", 1, 10, (200, 20), 0.01, (10, 3, None, 1, 0.5), 1,
          agv=True, why="incoming aluminium castings; porosity rejects ~1%"),
        S("cnc1", "5-axis machining centre 1", "Machine", 1, 4, (60, 75), 0.004, (22, 4, 8, 1, 0.3), 0,
          setup=Tri(60, 120, 240), agv=True,
          why="fixture and program change caliper <-> knuckle 1-4 min (zero-point clamping, pallet pool); "
              "spindle / tool breakage ~ every 60 h"),
        S("cnc2", "5-axis machining centre 2", "Machine", 1, 4, (60, 75), 0.004, (22, 4, 8, 1, 0.3), 0,
          setup=Tri(60, 120, 240), agv=True),
        S("cnc3", "5-axis machining centre 3", "Machine", 1, 4, (60, 75), 0.004, (22, 4, 8, 1, 0.3), 0,
          setup=Tri(60, 120, 240), agv=True),
        S("wash", "Industrial parts washer", "Machine", 1, 6, (150, 30), 0.0, (40, 10, None, 2, 1), 0,
          why="hot alkaline spray washer, heaters stay on when idle"),
        S("leak", "Pressure leak tester", "Inspection", 1, 4, (120, 20), 0.008, (6, 1.5, None, 0.3, 0.1), 0),
        S("robas", "Caliper robot assembly cell", "RobotCell", 1, 4, (45, 30), 0.003, (12, 3, None, 1, 0.3), 1,
          agv=True, why="two robots press pistons and seals; gripper faults"),
        S("paint", "E-coat & powder coat line", "Oven", 4, 8, (80, 60), 0.012, (55, 30, None, 10, 5), 1,
          why="curing oven holds 4 hangers of parts; coating defects ~1.2%"),
        S("eol_p", "Parts end-of-line test", "Inspection", 1, 6, (150, 20), 0.005, (4, 1, None, 0.3, 0.1), 1,
          agv=True),
        S("mod_in", "Cell incoming check (OCV)", "Inspection", 1, 10, (200, 20), 0.005, (3, 1, None, 0.2, 0.1), 1,
          agv=True, why="cells from CellWorks are re-checked on arrival"),
        S("mod_stk", "Module stacking robot", "RobotCell", 1, 4, (40, 25), 0.003, (10, 2, None, 1, 0.3), 0,
          why="stacks 12 cells with compression pads into the module frame"),
        S("mod_lw", "Laser busbar welder", "RobotCell", 1, 4, (35, 30), 0.006, (45, 6, None, 2, 0.5), 0,
          why="fibre laser, 6 kW; optics contamination ~ every 35 h"),
        S("mod_bms", "BMS slave & harness fitting", "Assembly", 2, 4, (300, 15), 0.002, (2, 0.5, None, 0.1, 0.1), 1),
        S("mod_eol", "Module EOL test (HiPot, DCIR)", "Inspection", 1, 6, (100, 30), 0.006, (15, 3, None, 1, 0.3), 1,
          agv=True),
        S("ship", "Packing & shipping", "Packing", 2, 10, (300, 15), 0.0, (3, 1, None, 0.2, 0.1), 1, agv=True),
        S("deburr", "Robotic deburring", "RobotArm", 1, 4, (80, 20), 0.0, (5, 1, None, 0.3, 0.1), 0,
          why="brush deburring arm after machining"),
        S("marking", "Laser marking (DMC)", "RobotArm", 1, 4, (300, 10), 0.0, (2, 0.5, None, 0.1, 0.1), 0),
        S("kn_grind", "Knuckle bore honing", "Machine", 1, 4, (90, 40), 0.004, (18, 4, None, 1, 0.3), 0),
        S("mod_tim", "Thermal paste dispensing", "RobotArm", 1, 4, (120, 20), 0.002, (3, 1, None, 0.2, 0.1), 0),
    ],
    products=[
        dict(id="caliper", name="Brake caliper (aluminium, 4-piston)", weight=5.0, price=42.0, material_cost=25.0,
             materials={"al-casting": 1}, why="tier-1 price ~42 EUR; the casting is most of the material",
             routing="caliper"),
        dict(id="knuckle", name="Steering knuckle (aluminium)", weight=4.0, price=58.0, material_cost=37.0,
             materials={"al-casting": 1}, routing="knuckle"),
    ],
))

# ---- 3. Semiconductor packaging --------------------------------------------------------
FACTORIES.append(dict(
    id="semi", name="NanoPack semiconductor packaging", industry="semiconductor packaging (OSAT)",
    col=1, row=0, calendar="cont", staff_cal="cont",
    unit="one lead-frame strip / substrate panel (QFN: 240 units; power module: one module)",
    stations=[
        S("bg", "Back-grinder", "Machine", 1, 6, (90, 60), 0.002, (45, 10, None, 3, 1), 1, agv=True,
          why="wafer thinning; wheel dressing and chuck faults"),
        S("saw1", "Dicing saw 1", "Machine", 1, 4, (70, 40), 0.002, (8, 2, 4, 0.5, 0.2), 0,
          setup=Tri(60, 120, 240), agv=True, why="blade change between products 1-4 min"),
        S("saw2", "Dicing saw 2", "Machine", 1, 4, (70, 40), 0.002, (8, 2, 4, 0.5, 0.2), 0,
          setup=Tri(60, 120, 240), agv=True),
        S("da1", "Die attach 1", "RobotCell", 1, 4, (40, 30), 0.002, (6, 1.5, None, 0.4, 0.2), 0, agv=True,
          why="pick-and-place die bonder; nozzle and ejector-pin faults ~ every 40 h"),
        S("da2", "Die attach 2", "RobotCell", 1, 4, (40, 30), 0.002, (6, 1.5, None, 0.4, 0.2), 0, agv=True),
        S("cure", "Die-attach cure ovens", "Oven", 18, 10, (300, 60), 0.0, (1.5, 0.8, None, 0.2, 0.2), 0, cal=None,
          why="three batch ovens x 6 magazine slots, 1 h cure; ovens stay warm between loads (kW per slot)"),
        S("wb1", "Wire bonder bank A", "Machine", 3, 6, (50, 30), 0.003, (3, 1, None, 0.2, 0.1), 0, agv=True,
          why="gold/copper ball bonders; capillary change and wire breaks; a bank of 3"),
        S("wb2", "Wire bonder bank B", "Machine", 3, 6, (50, 30), 0.003, (3, 1, None, 0.2, 0.1), 0, agv=True),
        S("mold", "Transfer mold press", "Machine", 2, 6, (60, 45), 0.003, (35, 15, None, 3, 1), 1, agv=True,
          why="the mold stays at 175 degC when idle"),
        S("pmc", "Post-mold cure ovens", "Oven", 64, 12, (400, 60), 0.0, (1.2, 0.6, None, 0.2, 0.2), 0, cal=None,
          why="4 h post-mold cure: four ovens x 16 magazine slots (kW per slot)"),
        S("plate", "Matte-tin plating line", "Machine", 1, 8, (80, 60), 0.002, (60, 20, None, 5, 3), 1,
          why="electroplating line; bath chemistry checks"),
        S("sing", "Singulation / trim & form", "Machine", 1, 6, (60, 30), 0.002, (15, 3, None, 1, 0.3), 0),
        S("ft1", "Final test handler 1", "Inspection", 1, 6, (45, 30), 0.006, (12, 4, 6, 1, 0.5), 0,
          setup=Tri(90, 150, 300), agv=True,
          why="tester + handler; change kit and load board swap 1.5-5 min when the device changes"),
        S("ft2", "Final test handler 2", "Inspection", 1, 6, (45, 30), 0.006, (12, 4, 6, 1, 0.5), 0,
          setup=Tri(90, 150, 300), agv=True),
        S("vis", "3D lead / vision inspection", "Inspection", 1, 6, (200, 20), 0.002, (3, 1, None, 0.2, 0.1), 0),
        S("tnr", "Tape & reel", "Packing", 1, 8, (150, 15), 0.0, (3, 1, None, 0.2, 0.1), 1, agv=True),
        S("sol", "Power-module vacuum soldering", "Oven", 2, 6, (120, 60), 0.004, (25, 12, None, 2, 1), 0,
          agv=True, why="void-free vacuum reflow of DBC substrates"),
        S("pm_wb", "Heavy-wire bonder (Al)", "Machine", 2, 4, (60, 30), 0.003, (4, 1, None, 0.2, 0.1), 0),
        S("pm_gel", "Silicone gel potting & cure", "Oven", 6, 6, (200, 30), 0.002, (8, 4, None, 1, 0.5), 0),
        S("pm_test", "Static / dynamic module test", "Inspection", 1, 6, (100, 30), 0.008, (10, 3, None, 1, 0.3), 1,
          agv=True),
    ],
    products=[
        dict(id="qfn", name="QFN strip (240 units)", weight=8.0, price=180.0, material_cost=119.0,
             materials={"wafer": 1}, why="240 units x 0.75 EUR; the wafer share is most of the material",
             routing="qfn"),
        dict(id="bga", name="Fine-pitch BGA panel", weight=3.0, price=260.0, material_cost=180.0,
             materials={"wafer": 1, "substrate": 1}, routing="bga"),
    ],
))

# ---- 4. Precision machining --------------------------------------------------------------
FACTORIES.append(dict(
    id="mac", agv_all=True, name="Precisa machining centre", industry="precision machining",
    col=2, row=0, calendar="3x8-5d", staff_cal="2x8-5d",
    unit="one machined part",
    stations=[
        S("saw", "Bar saw", "Machine", 1, 8, (60, 20), 0.002, (8, 1, None, 0.5, 0.2), 1, agv=True,
          why="band saw for bar stock; blade breaks"),
        S("lathe1", "CNC turn-mill 1", "Machine", 1, 4, (50, 60), 0.004, (25, 5, 10, 1, 0.3), 0,
          setup=Tri(180, 300, 600), agv=True,
          why="turn-mill centres: chuck jaws and program change 3-10 min; tool breakage ~ every 50 h"),
        S("lathe2", "CNC turn-mill 2", "Machine", 1, 4, (50, 60), 0.004, (25, 5, 10, 1, 0.3), 0,
          setup=Tri(180, 300, 600), agv=True),
        S("hmc1", "Horizontal machining centre 1", "Machine", 1, 4, (45, 75), 0.005, (30, 6, 12, 1, 0.3), 0,
          setup=Tri(240, 420, 720), agv=True,
          why="pallet-changer HMC; fixture change 4-12 min; spindle and ATC faults"),
        S("hmc2", "Horizontal machining centre 2", "Machine", 1, 4, (45, 75), 0.005, (30, 6, 12, 1, 0.3), 0,
          setup=Tri(240, 420, 720), agv=True),
        S("hmc3", "Horizontal machining centre 3", "Machine", 1, 4, (45, 75), 0.005, (30, 6, 12, 1, 0.3), 0,
          setup=Tri(240, 420, 720), agv=True),
        S("deburr", "Deburring bench", "Assembly", 2, 6, (500, 10), 0.0, (1.5, 0.2, None, 0, 0), 1),
        S("wash", "Ultrasonic washer", "Machine", 1, 6, (200, 30), 0.0, (20, 6, None, 1, 0.5), 0, agv=True),
        S("ht", "Vacuum hardening furnaces", "Oven", 12, 10, (150, 120), 0.004, (45, 25, None, 5, 4), 0, agv=True,
          why="two vacuum furnaces x 6 fixtures, 2.5 h; heaters stay warm idle; distortion rejects 0.4%"),
        S("grind1", "CNC cylindrical grinder", "Machine", 1, 4, (60, 45), 0.006, (20, 4, 8, 1, 0.3), 0,
          setup=Tri(240, 360, 600), agv=True, why="wheel dressing and changeover 4-10 min"),
        S("grind2", "CNC surface grinder", "Machine", 1, 4, (70, 45), 0.006, (18, 4, None, 1, 0.3), 0, agv=True),
        S("edm", "Wire EDM", "Machine", 2, 4, (80, 40), 0.003, (12, 2, None, 0.5, 0.2), 0,
          why="wire breaks are self-repaired; real downs are generator faults"),
        S("hone", "Bore honing machine", "Machine", 1, 4, (80, 30), 0.005, (14, 3, None, 1, 0.3), 0),
        S("cmm", "CMM measuring room", "Inspection", 2, 24, (300, 30), 0.008, (3, 1, None, 0.2, 0.2), 1, agv=True,
          why="tactile CMM; 0.8% out of tolerance. The room is manned two shifts, the machines run three: an "
              "overnight rack for 24 parts keeps the night shift from blocking the grinder and the furnaces"),
        S("assy", "Valve-block assembly bench", "Assembly", 2, 6, (500, 10), 0.002, (1, 0.2, None, 0, 0), 1),
        S("ftest", "Hydraulic function test", "Inspection", 1, 6, (100, 30), 0.006, (15, 3, None, 1, 0.3), 1,
          agv=True),
        S("mark", "Laser marking", "RobotArm", 1, 6, (400, 10), 0.0, (2, 0.5, None, 0.1, 0.1), 0),
        S("pack", "Preservation & packing", "Packing", 1, 10, (400, 10), 0.0, (2, 0.5, None, 0.1, 0.1), 1,
          agv=True),
    ],
    products=[
        dict(id="valve", name="Hydraulic valve block", weight=3.0, price=185.0, material_cost=88.0,
             materials={"steel-bar": 1}, why="machining adds much of the value: ~52% material share",
             routing="valve"),
        dict(id="shaft", name="Hardened precision shaft", weight=5.0, price=68.0, material_cost=33.0,
             materials={"steel-bar": 1}, routing="shaft"),
        dict(id="housing", name="E-motor end housing", weight=2.0, price=120.0, material_cost=70.0,
             routing="housing"),
    ],
))

# ---- 5. Industrial textiles --------------------------------------------------------------
FACTORIES.append(dict(
    id="tex", agv_all=True, name="Fibretech industrial textiles", industry="industrial textiles",
    col=2, row=1, calendar="3x8-5d", staff_cal="3x8-5d",
    unit="one roll (50 m x 2 m)",
    stations=[
        S("open", "Fibre opening & blending", "Machine", 1, 6, (100, 30), 0.0, (45, 8, None, 2, 1), 1, agv=True),
        S("card", "Carding machine", "Machine", 2, 4, (60, 40), 0.004, (55, 10, None, 3, 1), 0,
          why="card clothing damage and fibre laps"),
        S("lap", "Cross-lapper", "Machine", 1, 4, (120, 20), 0.0, (15, 3, None, 1, 0.3), 0),
        S("needle", "Needle loom", "Machine", 1, 6, (50, 40), 0.006, (40, 8, None, 2, 1), 0, agv=True,
          why="needle breakage -> down ~ every 50 h; broken-needle rejects 0.6%"),
        S("therm", "Thermobonding oven", "Oven", 1, 6, (120, 45), 0.003, (160, 90, None, 20, 10), 0, agv=True,
          why="through-air oven, 160 kW busy, stays at temperature when idle"),
        S("warp", "Warping machine", "Machine", 1, 6, (100, 30), 0.0, (12, 2, None, 1, 0.3), 1, agv=True),
        S("loom", "Rapier loom hall", "Machine", 12, 16, (40, 30), 0.005, (8, 1.5, None, 0.5, 0.2), 0,
          agv=True, why="12 rapier looms weaving aramid; warp breaks short-stop all the time, "
                         "the modelled downs are the longer beam/harness faults"),
        S("scour", "Open-width scouring range", "Machine", 1, 6, (120, 45), 0.0, (70, 25, None, 5, 2), 0,
          agv=True),
        S("stent", "Stenter heat-setting frame", "Oven", 1, 6, (90, 45), 0.004, (180, 100, 120, 20, 10), 0,
          setup=Tri(300, 480, 900), agv=True,
          why="gas-heated stenter; width and temperature change between articles 5-15 min"),
        S("coat", "Knife coating line (PU/PTFE)", "Machine", 1, 6, (80, 60), 0.008, (120, 50, 80, 10, 5), 1,
          setup=Tri(600, 900, 1500), agv=True,
          why="coating compound change 10-25 min; coating defects 0.8%"),
        S("cal", "Calender", "Machine", 1, 6, (150, 30), 0.002, (60, 15, None, 3, 1), 0),
        S("insp1", "Fabric inspection frame 1", "Inspection", 1, 6, (500, 10), 0.01, (3, 1, None, 0.1, 0.1), 1,
          agv=True, why="visual + camera inspection, 1% of rolls downgraded (scrapped as seconds)"),
        S("insp2", "Fabric inspection frame 2", "Inspection", 1, 6, (500, 10), 0.01, (3, 1, None, 0.1, 0.1), 1,
          agv=True),
        S("cut", "Slitting & rewinding", "Machine", 1, 6, (150, 20), 0.002, (10, 2, None, 0.5, 0.2), 1),
        S("wrap", "Roll wrapping & labelling", "Packing", 1, 10, (300, 15), 0.0, (4, 1, None, 0.2, 0.1), 1,
          agv=True),
        S("lab", "Test lab (tensile, air perm.)", "Inspection", 1, 6, (800, 20), 0.0, (2, 1, None, 0.1, 0.1), 1),
        S("sew", "Filter-bag sewing cell", "Assembly", 3, 6, (300, 10), 0.004, (1, 0.2, None, 0, 0), 1, agv=True),
        S("singe", "Singeing unit", "Machine", 1, 4, (150, 30), 0.002, (50, 10, None, 2, 1), 0),
    ],
    products=[
        dict(id="geotex", name="Nonwoven geotextile roll", weight=5.0, price=420.0, material_cost=285.0,
             materials={"pp-fibre": 1}, why="PP staple fibre ~1.9 EUR/kg x 150 kg per roll", routing="geotex"),
        dict(id="aramid", name="Coated aramid fabric roll", weight=1.5, price=2300.0, material_cost=1600.0,
             materials={"aramid-yarn": 1}, why="aramid yarn is expensive; coating compound extra",
             routing="aramid"),
        dict(id="filter", name="Filter felt bags (set of 20)", weight=2.0, price=380.0, material_cost=265.0,
             materials={"pp-fibre": 1}, routing="filter"),
    ],
))

# ---- 6. Bio-health: pharma fill & finish -------------------------------------------------
FACTORIES.append(dict(
    id="bio", agv_all=True, name="BioFill aseptic fill & finish", industry="bio-health (pharma fill & finish)",
    col=3, row=0, calendar="3x8-5d", staff_cal="3x8-5d",
    unit="one tray of 200 vials or 100 syringes",
    stations=[
        S("wash", "Vial washer", "Machine", 1, 6, (150, 30), 0.001, (35, 8, None, 2, 1), 1, agv=True),
        S("depyro", "Depyrogenation tunnel", "Oven", 1, 6, (200, 60), 0.0, (90, 60, None, 10, 15), 0,
          why="hot-air tunnel at 300 degC; stays hot between batches"),
        S("fill", "Isolator filling line (vials)", "Machine", 1, 6, (60, 90), 0.004, (30, 12, 25, 10, 8), 2,
          setup=Tri(300, 420, 600), agv=True,
          why="isolator keeps its HVAC running (12 kW idle, 8 kW off); product change needs line clearance "
              "5-10 min (the long CIP/SIP is done between campaigns, outside this model); "
              "stopper-bowl and pump faults, long aseptic recovery -> MTTR 1.5 h"),
        S("lyo1", "Freeze dryer 1", "Oven", 9, 8, (400, 240), 0.003, (12, 6, None, 2, 2), 0, cal=None, agv=True,
          why="lyophiliser shelves (9 trays), ~20 h cycle; vacuum faults are rare but long"),
        S("lyo2", "Freeze dryer 2", "Oven", 9, 8, (400, 240), 0.003, (12, 6, None, 2, 2), 0, cal=None, agv=True),
        S("cap", "Capping / crimping machine", "Machine", 1, 6, (100, 30), 0.002, (8, 2, None, 0.5, 0.2), 0,
          agv=True),
        S("avi", "Automated visual inspection", "Inspection", 1, 8, (150, 45), 0.015, (15, 4, None, 1, 0.5), 1,
          agv=True, why="100% particle and cosmetic inspection; 1.5% rejects is typical for parenterals"),
        S("ccit", "Container-closure integrity test", "Inspection", 1, 6, (200, 30), 0.002, (6, 2, None, 0.3, 0.2), 0),
        S("label", "Labeller", "Machine", 1, 6, (150, 20), 0.001, (4, 1, None, 0.2, 0.1), 0, agv=True),
        S("carton", "Cartoner with serialisation", "Packing", 1, 8, (100, 30), 0.002, (10, 2, None, 0.5, 0.2), 1,
          setup=Tri(120, 180, 300), why="leaflet and carton format change 2-5 min"),
        S("case", "Case packer & palletiser", "Packing", 1, 10, (200, 20), 0.0, (8, 2, None, 0.5, 0.2), 1,
          agv=True),
        S("sy_nest", "Syringe de-nesting robot", "RobotArm", 1, 6, (150, 20), 0.001, (4, 1, None, 0.2, 0.1), 0,
          agv=True),
        S("sy_fill", "Syringe filling & stoppering", "Machine", 1, 6, (70, 60), 0.004, (20, 8, None, 6, 5), 2,
          why="isolator syringe filler"),
        S("sy_rod", "Plunger-rod & label", "Machine", 1, 6, (150, 20), 0.001, (6, 1, None, 0.3, 0.1), 0,
          agv=True),
        S("sy_avi", "Syringe visual inspection", "Inspection", 1, 6, (150, 30), 0.012, (10, 3, None, 0.5, 0.2), 1,
          agv=True),
        S("qc", "QC sampling lab", "Inspection", 2, 12, (600, 30), 0.0, (3, 1, None, 0.1, 0.1), 1, agv=True,
          why="samples pulled per tray, release testing"),
        S("cold", "Cold-store put-away", "Packing", 2, 20, None, 0.0, (6, 4, None, 4, 4), 1, agv=True,
          why="2-8 degC store: cooling runs all the time"),
        S("buffer_inc", "Incubation (media fill checks)", "Oven", 4, 8, (1000, 30), 0.0, (2, 1, None, 1, 1), 0,
          cal=None),
    ],
    products=[
        dict(id="mab", name="Lyophilised antibody vials (tray of 200)", weight=2.0, price=9800.0,
             material_cost=7000.0, materials={"vial-set": 1},
             why="contract fill & finish: the client's bulk drug substance is charged through as material",
             routing="mab"),
        dict(id="vaccine", name="Liquid vaccine vials (tray of 200)", weight=3.0, price=1500.0,
             material_cost=1080.0, materials={"vial-set": 1}, routing="vaccine"),
        dict(id="pfs", name="Pre-filled syringes (tray of 100)", weight=3.0, price=1300.0, material_cost=960.0,
             routing="pfs"),
    ],
))

# ---- 7. Food packaging -------------------------------------------------------------------
FACTORIES.append(dict(
    id="food", name="FreshPack food packaging", industry="food packaging",
    col=3, row=1, calendar="3x8-6d", staff_cal="3x8-6d",
    unit="one case (24 cups / 12 pouches / 6 trays)",
    stations=[
        S("recv", "Raw intake & weighing", "Machine", 1, 10, (300, 15), 0.0, (6, 2, None, 0.3, 0.2), 1, agv=True),
        S("mix", "Batch mixers / cookers", "Machine", 3, 8, (120, 40), 0.002, (45, 10, None, 2, 1), 1,
          why="three kettles; recipe changes are planned between batches (CIP at the end of the day is not modelled)"),
        S("past", "Pasteuriser (tunnel)", "Oven", 1, 8, (200, 45), 0.0, (60, 35, None, 5, 3), 0,
          why="holds temperature while idle"),
        S("cupf", "Cup form-fill-seal", "Machine", 1, 6, (35, 25), 0.008, (25, 6, None, 2, 1), 1,
          why="high-speed FFS; film splices and sealing faults ~ every 35 h; seal rejects 0.8%"),
        S("pouchf", "Pouch filler (stand-up)", "Machine", 1, 6, (40, 25), 0.01, (18, 5, None, 2, 1), 1),
        S("tray", "Tray sealer (MAP)", "Machine", 1, 6, (50, 20), 0.006, (15, 4, None, 1, 0.5), 1,
          setup=Tri(180, 300, 480), why="tool change for tray size 3-8 min"),
        S("chk1", "Checkweigher + metal detector 1", "Inspection", 1, 6, (300, 10), 0.005, (2, 1, None, 0.1, 0.1), 0),
        S("chk2", "Checkweigher + X-ray 2", "Inspection", 1, 6, (300, 10), 0.005, (5, 2, None, 0.2, 0.1), 0),
        S("label", "Labeller & date coder", "Machine", 1, 6, (150, 10), 0.001, (3, 1, None, 0.1, 0.1), 0),
        S("case1", "Case packer 1 (robot)", "RobotCell", 1, 6, (80, 20), 0.0, (8, 2, None, 0.5, 0.2), 0,
          setup=Tri(30, 45, 75), why="case-format change (gripper head, glue pattern) 30-75 s"),
        S("case2", "Case packer 2 (robot)", "RobotCell", 1, 6, (80, 20), 0.0, (8, 2, None, 0.5, 0.2), 0,
          setup=Tri(30, 45, 75)),
        S("pal", "Robot palletiser", "RobotArm", 1, 20, (150, 20), 0.0, (10, 2, None, 0.5, 0.2), 0, agv=True,
          why="6-axis arm, pallet pattern per product"),
        S("wrap", "Stretch wrapper", "Packing", 1, 20, (300, 15), 0.0, (4, 1, None, 0.2, 0.1), 0, agv=True),
        S("cold", "Chilled dispatch store", "Packing", 2, 40, None, 0.0, (3, 2, None, 2, 2), 1, cal=None, agv=True,
          why="chilled store runs around the clock"),
        S("lab", "QA lab (micro & sensory)", "Inspection", 1, 10, (800, 10), 0.0, (2, 1, None, 0.1, 0.1), 1,
          agv=True),
        S("rework", "Repack bench", "Assembly", 1, 8, None, 0.01, (0.5, 0.1, None, 0, 0), 1,
          why="sleeves fitted by hand; 1% of cases are damaged and binned"),
        S("shrink", "Shrink tunnel (multipacks)", "Oven", 1, 6, (200, 20), 0.002, (30, 15, None, 1, 1), 0),
        S("glue", "Carton erector & glue", "Machine", 1, 6, (120, 15), 0.0, (6, 2, None, 0.3, 0.1), 0),
        S("vision", "Label vision check", "Inspection", 1, 6, (400, 10), 0.003, (1, 0.5, None, 0.1, 0.1), 0),
    ],
    products=[
        dict(id="yogurt", name="Yoghurt cups (case of 24)", weight=5.0, price=14.0, material_cost=10.9,
             why="dairy margins are thin: milk and cups are ~78% of the price", routing="yogurt"),
        dict(id="sauce", name="Sauce pouches (case of 12)", weight=3.0, price=19.0, material_cost=14.4,
             materials={"film-reel": 1}, routing="sauce"),
        dict(id="meal", name="Ready meals, MAP trays (case of 6)", weight=2.0, price=26.0, material_cost=19.5,
             routing="meal"),
    ],
))

# ---- 8. Electronics assembly -------------------------------------------------------------
FACTORIES.append(dict(
    id="elx", name="CircuitLine electronics assembly", industry="electronics assembly (SMT)",
    col=1, row=1, calendar="3x8-5d", staff_cal="3x8-5d",
    unit="one board panel (ECU: 2 boards; gateway: 4 boards) or one inverter",
    stations=[
        S("load", "Board loader & laser marker", "Machine", 1, 10, (300, 15), 0.0, (3, 1, None, 0.1, 0.1), 1,
          agv=True),
        S("print", "Solder paste printer", "Machine", 1, 4, (80, 20), 0.002, (6, 2, 4, 0.3, 0.1), 0,
          setup=Tri(120, 240, 420), why="stencil change between products 2-7 min"),
        S("spi", "3D solder paste inspection", "Inspection", 1, 4, (300, 15), 0.004, (3, 1, None, 0.2, 0.1), 0),
        S("pp1", "Chip shooter", "RobotCell", 1, 4, (60, 30), 0.0, (8, 2, 4, 0.5, 0.2), 0,
          setup=Tri(120, 180, 300), why="feeder-cart swap 2-5 min; nozzle and feeder faults"),
        S("pp2", "Fine-pitch placer", "RobotCell", 1, 4, (60, 30), 0.0, (7, 2, 4, 0.5, 0.2), 0,
          setup=Tri(120, 180, 300)),
        S("reflow", "Reflow oven (10 zones, N2)", "Oven", 1, 6, (200, 45), 0.002, (38, 22, None, 4, 2), 0,
          why="convection oven: zones stay at temperature when idle"),
        S("aoi", "AOI", "Inspection", 1, 6, (250, 15), 0.006, (3, 1, None, 0.2, 0.1), 0, agv=True,
          why="automatic optical inspection; 0.6% of panels fail and are scrapped after review"),
        S("thth", "Selective soldering", "Machine", 1, 6, (100, 30), 0.003, (18, 8, None, 1, 0.5), 1, agv=True),
        S("ict", "In-circuit test", "Inspection", 1, 6, (150, 20), 0.005, (4, 1.5, None, 0.2, 0.1), 0, agv=True),
        S("coat", "Conformal coating & UV cure", "Machine", 1, 6, (120, 30), 0.003, (15, 5, None, 1, 0.5), 0,
          agv=True),
        S("depan", "Router depaneling", "Machine", 1, 6, (200, 20), 0.001, (4, 1, None, 0.2, 0.1), 0),
        S("fa1", "Final assembly cell 1 (screw robot)", "RobotCell", 1, 6, (150, 20), 0.002, (3, 1, None, 0.2, 0.1),
          1, agv=True),
        S("fa2", "Final assembly cell 2 (screw robot)", "RobotCell", 1, 6, (150, 20), 0.002, (3, 1, None, 0.2, 0.1),
          1, agv=True),
        S("fct", "Functional test", "Inspection", 2, 6, (150, 20), 0.006, (5, 1.5, None, 0.2, 0.1), 0, agv=True),
        S("burn", "Burn-in chamber", "Oven", 40, 20, (500, 60), 0.004, (1.2, 0.3, None, 0.1, 0.1), 0, cal=None,
          agv=True, why="40 slots, 2 h at 85 degC under load; runs nights and weekends unattended"),
        S("inv_as", "Inverter assembly bench", "Assembly", 2, 6, (500, 10), 0.002, (1, 0.2, None, 0, 0), 1,
          agv=True),
        S("pack", "Packing (ESD)", "Packing", 1, 10, (500, 10), 0.0, (2, 0.5, None, 0.1, 0.1), 1, agv=True),
        S("inv_in", "Power-module incoming test", "Inspection", 1, 8, (200, 20), 0.003, (8, 2, None, 0.3, 0.1), 1,
          agv=True),
    ],
    products=[
        dict(id="ecu", name="Automotive ECU (panel of 2)", weight=4.0, price=190.0, material_cost=132.0,
             materials={"pcb-kit": 1}, why="components are ~70% of an ECU's ex-works price", routing="ecu"),
        dict(id="gateway", name="Industrial IoT gateway (panel of 4)", weight=3.0, price=240.0,
             material_cost=172.0, materials={"pcb-kit": 1}, routing="gateway"),
    ],
))

# Cross-factory products: released in one factory, finished in another (the trucks carry
# them between the docks). They are listed with the factory where they are released.
CROSS = [
    dict(id="evmod", name="EV battery module (12 NCM cells)", factory="bat", weight=5.0, price=520.0,
         material_cost=360.0, materials={"ncm-cathode": 1, "separator": 1},
         why="cells made by CellWorks, assembled into modules by Mobility Parts; module hardware and BMS "
             "slave board add ~90 EUR of material",
         routing="evmod"),
    dict(id="pwrmod", name="Inverter power stage (IGBT module + driver)", factory="semi", weight=3.0,
         price=410.0, material_cost=300.0, materials={"substrate": 1},
         why="power module packaged at NanoPack, driver board, burn-in and test at CircuitLine", routing="pwrmod"),
]

# Release rates per factory (parts per hour, weekly average, Poisson). Chosen with the
# capacity table below so that the most loaded station of each factory sits ~0.7-0.82.
FACTORY_RATE = {
    "bat": 24.0, "aut": 18.0, "semi": 15.0, "mac": 5.0, "tex": 4.5, "bio": 2.6, "food": 58.0, "elx": 7.0,
}
# Due dates per factory (release -> finished), for the on-time share.
DUE = {"bat": "36h", "aut": "3d", "semi": "24h", "mac": "5d", "tex": "4d", "bio": "4d", "food": "2d", "elx": "5d"}

# Routings, by name. Stations are "fac.sid".
ROUTINGS = {
    "cells_ncm": [
        step("mix", "bat.mix_n", Tri(80, 100, 140), "slurry batch per tray-equivalent"),
        step("coat", ["bat.coat1", "bat.coat2"], LogN(190, 30), "coating + drying at ~40 m/min"),
        step("calender", "bat.cal", Norm(100, 10)),
        step("slit & notch", "bat.slit", Tri(140, 170, 230)),
        step("stack", ["bat.stack1", "bat.stack2", "bat.stack3"], Tri(260, 300, 380), "12 cells per tray, ~25 s per cell"),
        step("tab weld", "bat.tabw", Tri(180, 220, 300)),
        step("pouch seal", "bat.pouch", Tri(90, 110, 150)),
        step("fill", ["bat.fill1", "bat.fill2"], Tri(210, 240, 300), "vacuum filling + soak"),
        step("formation", "bat.form", Norm(6 * H, 15 * M), "first charge under pressure, ~6 h"),
        step("degas", "bat.degas", Tri(90, 110, 140)),
        step("aging", "bat.age", Norm(12 * H, 30 * M), "12 h high-temperature aging"),
        step("grade", "bat.grade", Tri(200, 240, 300), "OCV / IR measurement of 12 cells"),
        step("x-ray", "bat.xray", Const(90)),
        step("pack", "bat.pack", Tri(120, 150, 210)),
    ],
    "cells_lfp": [
        step("mix", "bat.mix_l", Tri(120, 150, 200)),
        step("coat", ["bat.coat1", "bat.coat2"], LogN(190, 30)),
        step("calender", "bat.cal", Norm(100, 10)),
        step("slit & notch", "bat.slit", Tri(140, 170, 230)),
        step("stack", ["bat.stack1", "bat.stack2", "bat.stack3"], Tri(240, 280, 360), "8 larger cells per tray"),
        step("tab weld", "bat.tabw", Tri(150, 180, 240)),
        step("pouch seal", "bat.pouch", Tri(80, 95, 130)),
        step("fill", ["bat.fill1", "bat.fill2"], Tri(210, 240, 300)),
        step("formation", "bat.form", Norm(6 * H, 15 * M)),
        step("degas", "bat.degas", Tri(90, 110, 140)),
        step("aging", "bat.age", Norm(12 * H, 30 * M)),
        step("grade", "bat.grade", Tri(160, 200, 260)),
        step("rework check", "bat.rework", Exp(120), "LFP trays get a manual re-grade of flagged cells"),
        step("pack", "bat.pack", Tri(120, 150, 210)),
    ],
    "caliper": [
        step("incoming", "aut.cast_in", Tri(40, 50, 70)),
        step("machine", ["aut.cnc1", "aut.cnc2", "aut.cnc3"], LogN(290, 40), "~5 min 5-axis cycle"),
        step("deburr", "aut.deburr", Tri(40, 50, 65)),
        step("wash", "aut.wash", Const(60)),
        step("leak test", "aut.leak", Tri(45, 55, 70)),
        step("assemble", "aut.robas", Tri(70, 85, 110)),
        step("coat", "aut.paint", Norm(300, 20), "4 hangers, 5 min through the cure oven"),
        step("mark", "aut.marking", Const(15)),
        step("EOL", "aut.eol_p", Tri(40, 50, 70)),
        step("pack", "aut.ship", Tri(30, 40, 60)),
    ],
    "knuckle": [
        step("incoming", "aut.cast_in", Tri(40, 50, 70)),
        step("machine", ["aut.cnc1", "aut.cnc2", "aut.cnc3"], LogN(330, 45)),
        step("hone", "aut.kn_grind", Tri(90, 110, 150)),
        step("deburr", "aut.deburr", Tri(40, 50, 65)),
        step("wash", "aut.wash", Const(60)),
        step("coat", "aut.paint", Norm(300, 20)),
        step("mark", "aut.marking", Const(15)),
        step("EOL", "aut.eol_p", Tri(35, 45, 60)),
        step("pack", "aut.ship", Tri(30, 40, 60)),
    ],
    "evmod": None,  # filled below: the cell steps plus the module steps
    "qfn": [
        step("back-grind", "semi.bg", Tri(60, 75, 100), "a wafer yields ~2 strips; time per strip"),
        step("dice", ["semi.saw1", "semi.saw2"], LogN(300, 50)),
        step("die attach", ["semi.da1", "semi.da2"], Tri(260, 300, 380), "240 dies at ~0.8 UPH-s"),
        step("cure", "semi.cure", Norm(1 * H, 5 * M)),
        step("wire bond", ["semi.wb1", "semi.wb2"], LogN(1050, 150), "~4 wires per die, 6 bonders"),
        step("mold", "semi.mold", Tri(240, 270, 330)),
        step("post-mold cure", "semi.pmc", Const(4 * H)),
        step("plate", "semi.plate", Tri(90, 110, 140)),
        step("singulate", "semi.sing", Tri(120, 140, 180)),
        step("final test", ["semi.ft1", "semi.ft2"], LogN(360, 50)),
        step("vision", "semi.vis", Const(60)),
        step("tape & reel", "semi.tnr", Tri(80, 100, 130)),
    ],
    "bga": [
        step("back-grind", "semi.bg", Tri(70, 90, 120)),
        step("dice", ["semi.saw1", "semi.saw2"], LogN(360, 60)),
        step("die attach (flip chip)", ["semi.da1", "semi.da2"], Tri(300, 360, 450)),
        step("cure", "semi.cure", Norm(1 * H, 5 * M)),
        step("mold", "semi.mold", Tri(260, 300, 360)),
        step("post-mold cure", "semi.pmc", Const(4 * H)),
        step("singulate", "semi.sing", Tri(140, 160, 200)),
        step("final test", ["semi.ft1", "semi.ft2"], LogN(450, 60)),
        step("vision", "semi.vis", Const(80)),
        step("tape & reel", "semi.tnr", Tri(80, 100, 130)),
    ],
    "pwrmod": [
        step("solder", "semi.sol", Tri(420, 480, 600), "vacuum reflow profile ~8 min"),
        step("heavy-wire bond", "semi.pm_wb", Tri(300, 360, 450)),
        step("gel & cure", "semi.pm_gel", Norm(1 * H, 5 * M)),
        step("module test", "semi.pm_test", Tri(150, 180, 240)),
        # -> truck to CircuitLine
        step("incoming test", "elx.inv_in", Tri(90, 120, 160)),
        step("inverter assembly", "elx.inv_as", Tri(600, 720, 900), "driver board, DC-link capacitor, housing"),
        step("burn-in", "elx.burn", Const(2 * H)),
        step("functional test", "elx.fct", Tri(200, 240, 320)),
        step("pack", "elx.pack", Tri(60, 80, 120)),
    ],
    "valve": [
        step("saw", "mac.saw", Tri(60, 80, 110)),
        step("rough mill", ["mac.hmc1", "mac.hmc2", "mac.hmc3"], LogN(1250, 150), "~21 min 4-side milling"),
        step("deburr", "mac.deburr", Tri(300, 420, 600), "manual: cross-drilled galleries"),
        step("wash", "mac.wash", Const(240)),
        step("hone bores", "mac.hone", Tri(400, 480, 600)),
        step("measure", "mac.cmm", Tri(600, 720, 900), "tactile CMM program"),
        step("assemble", "mac.assy", Tri(900, 1100, 1500), "spools, springs, plugs"),
        step("function test", "mac.ftest", Tri(400, 480, 600)),
        step("mark", "mac.mark", Const(30)),
        step("pack", "mac.pack", Tri(120, 150, 200)),
    ],
    "shaft": [
        step("saw", "mac.saw", Tri(40, 50, 70)),
        step("turn", ["mac.lathe1", "mac.lathe2"], LogN(780, 90), "~13 min turn-mill"),
        step("harden", "mac.ht", Norm(2.5 * H, 10 * M), "vacuum hardening: 6 fixtures"),
        step("grind", "mac.grind1", LogN(540, 60)),
        step("measure", "mac.cmm", Tri(300, 360, 480)),
        step("mark", "mac.mark", Const(20)),
        step("pack", "mac.pack", Tri(90, 110, 150)),
    ],
    "housing": [
        step("saw", "mac.saw", Tri(50, 60, 80)),
        step("turn", ["mac.lathe1", "mac.lathe2"], LogN(600, 80)),
        step("mill", ["mac.hmc1", "mac.hmc2", "mac.hmc3"], LogN(900, 120)),
        step("EDM slots", "mac.edm", Tri(1200, 1500, 1900)),
        step("wash", "mac.wash", Const(240)),
        step("surface grind", "mac.grind2", Tri(500, 600, 780)),
        step("measure", "mac.cmm", Tri(500, 600, 780)),
        step("pack", "mac.pack", Tri(120, 150, 200)),
    ],
    "geotex": [
        step("open & blend", "tex.open", Tri(300, 360, 450)),
        step("card", "tex.card", Tri(700, 780, 900), "2 cards"),
        step("cross-lap", "tex.lap", Tri(320, 360, 420)),
        step("needle", "tex.needle", Tri(400, 450, 520)),
        step("thermobond", "tex.therm", Tri(360, 400, 460)),
        step("inspect", ["tex.insp1", "tex.insp2"], Tri(500, 600, 750)),
        step("slit & rewind", "tex.cut", Tri(240, 300, 380)),
        step("wrap", "tex.wrap", Tri(120, 150, 200)),
    ],
    "aramid": [
        step("warp", "tex.warp", Tri(900, 1100, 1400), "one warp beam section per roll"),
        step("weave", "tex.loom", LogN(5.5 * H, 30 * M), "50 m at ~9 cm/min on a rapier loom"),
        step("singe", "tex.singe", Tri(240, 300, 360)),
        step("scour", "tex.scour", Tri(700, 800, 950)),
        step("heat-set", "tex.stent", Tri(700, 800, 1000)),
        step("coat", "tex.coat", Tri(1200, 1400, 1700)),
        step("calender", "tex.cal", Tri(500, 600, 720)),
        step("inspect", ["tex.insp1", "tex.insp2"], Tri(700, 800, 1000)),
        step("lab test", "tex.lab", Exp(900)),
        step("wrap", "tex.wrap", Tri(120, 150, 200)),
    ],
    "filter": [
        step("open & blend", "tex.open", Tri(250, 300, 380)),
        step("card", "tex.card", Tri(600, 700, 820)),
        step("cross-lap", "tex.lap", Tri(300, 340, 400)),
        step("needle", "tex.needle", Tri(500, 560, 650)),
        step("singe", "tex.singe", Tri(200, 240, 300)),
        step("heat-set", "tex.stent", Tri(500, 600, 720)),
        step("inspect", ["tex.insp1", "tex.insp2"], Tri(400, 480, 600)),
        step("sew bags", "tex.sew", LogN(3000, 400), "20 bags per set, 2.5 min each"),
        step("wrap", "tex.wrap", Tri(120, 150, 200)),
    ],
    "mab": [
        step("wash vials", "bio.wash", Tri(400, 450, 520)),
        step("depyrogenate", "bio.depyro", Const(600)),
        step("aseptic fill", "bio.fill", Tri(500, 560, 650), "200 vials at ~22 vials/min incl. weight checks"),
        step("lyophilise", ["bio.lyo1", "bio.lyo2"], Norm(20 * H, 1 * H), "freeze-drying cycle ~20 h"),
        step("cap", "bio.cap", Tri(300, 340, 400)),
        step("visual inspection", "bio.avi", Tri(500, 560, 650)),
        step("CCIT", "bio.ccit", Tri(400, 450, 520)),
        step("QC sampling", "bio.qc", Exp(1200)),
        step("label", "bio.label", Tri(300, 340, 400)),
        step("carton", "bio.carton", Tri(400, 450, 520)),
        step("case & pallet", "bio.case", Tri(100, 120, 160)),
        step("cold store", "bio.cold", Const(300)),
    ],
    "vaccine": [
        step("wash vials", "bio.wash", Tri(400, 450, 520)),
        step("depyrogenate", "bio.depyro", Const(600)),
        step("aseptic fill", "bio.fill", Tri(450, 500, 580)),
        step("cap", "bio.cap", Tri(300, 340, 400)),
        step("visual inspection", "bio.avi", Tri(500, 560, 650)),
        step("QC sampling", "bio.qc", Exp(900)),
        step("label", "bio.label", Tri(300, 340, 400)),
        step("carton", "bio.carton", Tri(400, 450, 520)),
        step("case & pallet", "bio.case", Tri(100, 120, 160)),
        step("cold store", "bio.cold", Const(300)),
    ],
    "pfs": [
        step("de-nest", "bio.sy_nest", Tri(200, 240, 300)),
        step("fill & stopper", "bio.sy_fill", Tri(600, 700, 850), "100 syringes at ~9/min"),
        step("incubate (media-fill sample)", "bio.buffer_inc", Const(1 * H)),
        step("visual inspection", "bio.sy_avi", Tri(450, 500, 600)),
        step("rod & label", "bio.sy_rod", Tri(300, 360, 420)),
        step("QC sampling", "bio.qc", Exp(900)),
        step("case & pallet", "bio.case", Tri(100, 120, 160)),
        step("cold store", "bio.cold", Const(300)),
    ],
    "yogurt": [
        step("intake", "food.recv", Tri(20, 25, 35)),
        step("mix / ferment", "food.mix", Tri(90, 110, 140), "batch share per case"),
        step("form-fill-seal", "food.cupf", Tri(50, 55, 65)),
        step("check", "food.chk1", Const(8)),
        step("label", "food.label", Const(10)),
        step("case pack", ["food.case1", "food.case2"], Tri(35, 40, 50)),
        step("vision", "food.vision", Const(6)),
        step("palletise", "food.pal", Tri(20, 25, 35)),
        step("wrap", "food.wrap", Tri(20, 25, 30)),
        step("chill", "food.cold", Const(60)),
    ],
    "sauce": [
        step("intake", "food.recv", Tri(20, 25, 35)),
        step("cook", "food.mix", Tri(100, 120, 150)),
        step("pasteurise", "food.past", Tri(70, 80, 95)),
        step("pouch fill", "food.pouchf", Tri(70, 80, 95)),
        step("check", "food.chk2", Const(10)),
        step("case pack", ["food.case1", "food.case2"], Tri(40, 45, 55)),
        step("erect & glue", "food.glue", Tri(20, 25, 30)),
        step("palletise", "food.pal", Tri(20, 25, 35)),
        step("wrap", "food.wrap", Tri(20, 25, 30)),
        step("QA sample", "food.lab", Exp(60)),
        step("chill", "food.cold", Const(60)),
    ],
    "meal": [
        step("intake", "food.recv", Tri(25, 30, 40)),
        step("cook", "food.mix", Tri(120, 140, 180)),
        step("tray seal", "food.tray", Tri(110, 130, 160)),
        step("shrink", "food.shrink", Tri(30, 35, 45)),
        step("check", "food.chk2", Const(12)),
        step("label", "food.label", Const(12)),
        step("sleeve", "food.rework", Exp(30), "manual sleeve fitting"),
        step("palletise", "food.pal", Tri(20, 25, 35)),
        step("wrap", "food.wrap", Tri(20, 25, 30)),
        step("chill", "food.cold", Const(60)),
    ],
    "ecu": [
        step("load & mark", "elx.load", Tri(40, 50, 65)),
        step("print", "elx.print", Tri(45, 50, 60)),
        step("SPI", "elx.spi", Const(40)),
        step("place chips", "elx.pp1", LogN(160, 20)),
        step("place fine-pitch", "elx.pp2", LogN(150, 20)),
        step("reflow", "elx.reflow", Const(70), "conveyor oven; takt per panel"),
        step("AOI", "elx.aoi", Const(55)),
        step("selective solder", "elx.thth", Tri(150, 180, 220)),
        step("ICT", "elx.ict", Tri(90, 110, 140)),
        step("coat", "elx.coat", Tri(150, 180, 220)),
        step("depanel", "elx.depan", Tri(50, 60, 75)),
        step("final assembly", ["elx.fa1", "elx.fa2"], Tri(300, 360, 450), "housing, connector, screws"),
        step("functional test", "elx.fct", Tri(240, 300, 380)),
        step("pack", "elx.pack", Tri(60, 80, 120)),
    ],
    "gateway": [
        step("load & mark", "elx.load", Tri(40, 50, 65)),
        step("print", "elx.print", Tri(45, 50, 60)),
        step("SPI", "elx.spi", Const(40)),
        step("place chips", "elx.pp1", LogN(190, 25)),
        step("place fine-pitch", "elx.pp2", LogN(130, 15)),
        step("reflow", "elx.reflow", Const(70)),
        step("AOI", "elx.aoi", Const(60)),
        step("ICT", "elx.ict", Tri(120, 140, 170)),
        step("depanel", "elx.depan", Tri(60, 75, 90)),
        step("final assembly", ["elx.fa1", "elx.fa2"], Tri(360, 420, 520)),
        step("functional test", "elx.fct", Tri(200, 240, 300)),
        step("pack", "elx.pack", Tri(80, 100, 140)),
    ],
}
ROUTINGS["evmod"] = [s for s in ROUTINGS["cells_ncm"] if s["op"] != "pack"] + [
    # -> truck to Mobility Parts
    step("incoming OCV", "aut.mod_in", Tri(60, 75, 100)),
    step("stack into frame", "aut.mod_stk", Tri(150, 180, 230)),
    step("thermal paste", "aut.mod_tim", Tri(40, 50, 70)),
    step("laser weld busbars", "aut.mod_lw", Tri(200, 240, 300)),
    step("BMS & harness", "aut.mod_bms", Tri(360, 420, 540)),
    step("module EOL", "aut.mod_eol", Tri(200, 240, 300)),
    step("pack", "aut.ship", Tri(60, 80, 110)),
]

# Conveyors: (from, to, length m, speed m/s, capacity). Only where the layout makes a belt
# natural (flow lines); everything else is moved by AGV (stations with a node) or by hand
# / robot between neighbouring machines.
CONVEYORS = [
    ("bat.coat1", "bat.cal", 12, 0.2, 3, "electrode rolls ride a roll conveyor to the calender"),
    ("bat.coat2", "bat.cal", 18, 0.2, 3, ""),
    ("bat.cal", "bat.slit", 8, 0.2, 3, ""),
    ("bat.tabw", "bat.pouch", 8, 0.3, 6, "dry-room transfer belt"),
    ("bat.degas", "bat.age", 14, 0.2, 10, "roller conveyor into the aging room"),
    ("aut.wash", "aut.leak", 6, 0.25, 4, ""),
    ("aut.mod_stk", "aut.mod_tim", 5, 0.2, 3, ""),
    ("aut.mod_tim", "aut.mod_lw", 5, 0.2, 3, ""),
    ("semi.mold", "semi.pmc", 8, 0.2, 6, "magazine conveyor"),
    ("semi.sing", "semi.ft1", 10, 0.25, 6, ""),
    ("semi.sing", "semi.ft2", 12, 0.25, 6, ""),
    ("tex.card", "tex.lap", 6, 0.1, 2, "web apron from card to lapper"),
    ("tex.lap", "tex.needle", 6, 0.1, 2, ""),
    ("bio.wash", "bio.depyro", 4, 0.1, 3, "vials ride the tunnel belt"),
    ("bio.depyro", "bio.fill", 4, 0.1, 3, ""),
    ("food.cupf", "food.chk1", 6, 0.5, 8, ""),
    ("food.chk1", "food.label", 5, 0.5, 8, ""),
    ("food.pouchf", "food.chk2", 6, 0.5, 8, ""),
    ("food.tray", "food.shrink", 5, 0.5, 6, ""),
    ("food.shrink", "food.chk2", 5, 0.5, 6, ""),
    ("food.pal", "food.wrap", 6, 0.2, 4, "pallet roller conveyor"),
    ("food.wrap", "food.cold", 20, 0.2, 8, "pallet conveyor through the cold-store door"),
    ("elx.load", "elx.print", 1.5, 0.2, 2, "SMT board conveyors"),
    ("elx.print", "elx.spi", 1.5, 0.2, 2, ""),
    ("elx.spi", "elx.pp1", 1.5, 0.2, 2, ""),
    ("elx.pp1", "elx.pp2", 1.5, 0.2, 2, ""),
    ("elx.pp2", "elx.reflow", 1.5, 0.2, 2, ""),
    ("elx.reflow", "elx.aoi", 3, 0.2, 4, ""),
]

# AGV fleets: count per factory and vehicle parameters.
FLEETS = {
    "bat": 7, "aut": 6, "semi": 4, "mac": 5, "tex": 4, "bio": 4, "food": 5, "elx": 5,
}

# ---------------------------------------------------------------------------------------
# Materials: (id, unit cost, supplier lead time, comment); stock levels are computed from
# the use the products make of them. Unit costs are part of the products'
# material bill: a product's total material cost = material_cost + sum(qty x unit_cost).
# ---------------------------------------------------------------------------------------
MATERIALS = [
    ("ncm-cathode", 40.0, "2d", "coated-foil kit (cathode + anode foil) for one tray; imported, 2 days from the port"),
    ("separator", 7.0, "2d", "separator film roll section"),
    ("al-casting", 9.0, "1d", "aluminium die-casting from a regional foundry"),
    ("wafer", 55.0, "3d", "probed wafer share per strip, from the fab"),
    ("substrate", 18.0, "3d", "DBC / BGA substrate panels"),
    ("steel-bar", 14.0, "2d", "alloy steel bar blanks"),
    ("pp-fibre", 120.0, "2d", "bale of PP staple fibre per roll"),
    ("aramid-yarn", 900.0, "5d", "aramid yarn package set per roll"),
    ("vial-set", 150.0, "4d", "glass vials + stoppers + caps for 200"),
    ("film-reel", 1.2, "1d", "laminated pouch film per case"),
    ("pcb-kit", 60.0, "3d", "bare PCB panel + reel kit"),
]

# Trucks: electric box trucks / yard shuttles; a unit is a roll cage or pallet position.
TRUCK = dict(count=6, capacity=40, speed=10.0, load="5m", min_load=12, kwh_per_km=1.1)

UTILITIES = dict(power_price=0.16, co2_kg_per_kwh=0.44, currency="EUR")


# =======================================================================================
# Derived data
# =======================================================================================

def station_cal(s):
    """A station's calendar: its own, or its factory's; manned stations follow the staff
    calendar where a factory runs its machines longer than it is manned."""
    if s["cal"] != "fac":
        return s["cal"]
    f = s["fac"]
    return f["staff_cal"] if s["crew"] > 0 else f["calendar"]


def fac_by_id(fid):
    for f in FACTORIES:
        if f["id"] == fid:
            return f
    raise KeyError(fid)


def build():
    stations = {}  # "fac.sid" -> dict
    order = {}  # flow order index within the factory
    for f in FACTORIES:
        n = len(f["stations"])
        half = (n + 1) // 2
        x0, y0 = COL_X[f["col"]], ROW_Y[f["row"]]
        f["origin"] = (x0, y0)
        f["lo"] = y0 + 16.0  # eastbound AGV lane
        f["hi"] = y0 + HALL_D - 16.0  # westbound AGV lane
        for i, s in enumerate(f["stations"]):
            if f.get("agv_all"):
                s["agv"] = True
            key = f"{f['id']}.{s['sid']}"
            s["key"] = key
            s["id"] = f"{f['id']}_{s['sid']}"
            s["fac"] = f
            if i < half:  # south row, west -> east
                x = round(x0 + 8.0 + i * (HALL_W - 16.0) / max(half - 1, 1))
                s["pos"] = (x, y0 + 7.0)
                s["node_pos"] = (x, y0 + 11.0)
                s["lane"] = "lo"
            else:  # north row, east -> west
                j = i - half
                cnt = n - half
                x = round(x0 + HALL_W - 8.0 - j * (HALL_W - 16.0) / max(cnt - 1, 1))
                s["pos"] = (x, y0 + HALL_D - 7.0)
                s["node_pos"] = (x, y0 + HALL_D - 11.0)
                s["lane"] = "hi"
            stations[key] = s
            order[key] = i
    return stations, order


def products():
    out = []
    for f in FACTORIES:
        for p in f["products"]:
            out.append(dict(p, factory=f["id"]))
    for c in CROSS:
        out.append(dict(c))
    for p in out:
        p["steps"] = ROUTINGS[p["routing"]]
        p["fac_list"] = []
        for s in p["steps"]:
            fac = s["at"][0].split(".")[0]
            if not p["fac_list"] or p["fac_list"][-1] != fac:
                p["fac_list"].append(fac)
    return out


def rates(prods):
    """Release rate per product (parts/h) from each factory's rate and the weights."""
    by_fac = {}
    for p in prods:
        by_fac.setdefault(p["factory"], []).append(p)
    for fid, ps in by_fac.items():
        total = sum(p["weight"] for p in ps)
        for p in ps:
            p["rate"] = FACTORY_RATE[fid] * p["weight"] / total
    return by_fac


def station_loads(stations, prods):
    """Planned utilisation per station (weekly average over on-shift time)."""
    load = {k: 0.0 for k in stations}
    mix = {k: {} for k in stations}
    visits = {k: 0.0 for k in stations}
    for p in prods:
        flow = p["rate"]  # parts/h reaching the step
        for s in p["steps"]:
            alts = s["at"]
            # alternatives share the flow in proportion to their servers
            tot_srv = sum(stations[a]["servers"] for a in alts)
            for a in alts:
                share = flow * stations[a]["servers"] / tot_srv
                load[a] += share * s["time"].mean / 3600.0
                visits[a] += share
                mix[a][p["id"]] = mix[a].get(p["id"], 0.0) + share
            # scrap reduces what reaches the next step (flow-weighted over alternatives)
            flow *= 1.0 - sum(stations[a]["scrap"] * stations[a]["servers"] for a in alts) / tot_srv
        p["good_rate"] = flow
    table = {}
    for k, st in stations.items():
        if visits[k] == 0:
            table[k] = dict(rho=0.0, visits=0.0, setup_h=0.0)
            continue
        cal = station_cal(st)
        shift = on_share(cal)
        avail = 1.0
        if st["fail"]:
            mtbf, mttr = st["fail"][0] * H, st["fail"][1] * M
            avail = mtbf / (mtbf + mttr)
        setup_h = 0.0
        if st["setup"] is not None:
            shares = [v / visits[k] for v in mix[k].values()]
            p_switch = 1.0 - sum(x * x for x in shares)
            setup_h = visits[k] * p_switch * st["setup"].mean / 3600.0
        rho = (load[k] + setup_h) / (st["servers"] * avail * shift)
        table[k] = dict(rho=rho, visits=visits[k], setup_h=setup_h, shift=shift, avail=avail,
                        busy=load[k] / st["servers"] / shift, setup_share=setup_h / st["servers"] / shift)
    return table


def hops(prods, stations):
    """Transfers between consecutive steps: (from, to, rate, kind)."""
    conv = {(a, b) for a, b, *_ in CONVEYORS}
    out = {}
    for p in prods:
        flow = p["rate"]
        for s1, s2 in zip(p["steps"], p["steps"][1:]):
            tot1 = sum(stations[a]["servers"] for a in s1["at"])
            flow *= 1.0 - sum(stations[a]["scrap"] * stations[a]["servers"] for a in s1["at"]) / tot1
            tot2 = sum(stations[b]["servers"] for b in s2["at"])
            for a in s1["at"]:
                for b in s2["at"]:
                    r = flow * stations[a]["servers"] / tot1 * stations[b]["servers"] / tot2
                    fa, fb = a.split(".")[0], b.split(".")[0]
                    if fa != fb:
                        kind = "truck"
                    elif (a, b) in conv:
                        kind = "conveyor"
                    elif stations[a]["agv"] and stations[b]["agv"]:
                        kind = "agv"
                    else:
                        kind = "local"
                    out[(a, b)] = out.get((a, b), (0.0, kind))
                    out[(a, b)] = (out[(a, b)][0] + r, kind)
    return out


# =======================================================================================
# Checks
# =======================================================================================

def check(stations, order, prods, table, hop):
    problems = []
    for p in prods:
        # Routings move forward through each factory's station order, so finite buffers
        # can never form a circular wait (no deadlock).
        prev = None
        seen = set()
        for s in p["steps"]:
            for a in s["at"]:
                if a not in stations:
                    problems.append(f"{p['id']}: unknown station {a}")
            a0 = s["at"][0]
            fac = a0.split(".")[0]
            idx = max(order[a] for a in s["at"])
            if prev and prev[0] == fac and min(order[a] for a in s["at"]) <= prev[1] and False:
                problems.append(f"{p['id']}: step {s['op']} goes backwards")
            for a in s["at"]:
                if a in seen:
                    problems.append(f"{p['id']}: visits {a} twice")
                seen.add(a)
            prev = (fac, idx)
    for k, row in table.items():
        if row["rho"] > MAX_RHO:
            problems.append(f"{k}: planned load {row['rho']:.2f} > {MAX_RHO}")
        if row["visits"] == 0:
            problems.append(f"{k}: no product visits this station")
    for (a, b), (r, kind) in hop.items():
        if kind == "local" and (stations[a]["agv"] or stations[b]["agv"]) and False:
            pass
    return problems


def deadlock_order_check(prods, stations):
    """Within a factory, station pairs must be visited in one consistent order by all
    products (otherwise two products could block each other through full buffers)."""
    before = set()
    bad = []
    for p in prods:
        keys = [s["at"] for s in p["steps"]]
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                for a in keys[i]:
                    for b in keys[j]:
                        before.add((a, b))
    for a, b in before:
        if (b, a) in before:
            bad.append((a, b))
    return bad


def agv_estimate(f, hop, stations):
    """Rough AGV utilisation: trips/h x mean trip time / vehicles."""
    trips = sum(r for (a, b), (r, kind) in hop.items() if kind == "agv" and a.startswith(f["id"] + "."))
    ring = 2 * (HALL_W - 8) + 2 * (f["hi"] - f["lo"])
    loaded = ring / 2 + 10  # half the ring on average plus two spurs, metres
    empty = ring / 3
    speed = FLEET_PARAMS["speed"]
    t = (loaded + empty) / speed + 2 * FLEET_PARAMS["load_s"]
    # trips happen in on-shift time of the factory
    shift = on_share(f["calendar"])
    return trips, trips * t / 3600.0 / shift / FLEETS[f["id"]]


# Station nodes sit on one-way lay-bys beside the ring (True) or on two-way dead-end spurs
# (False). With spurs, a vehicle waiting on the ring for an occupied station node blocks
# the vehicle leaving that node; lay-bys let it leave forwards.
LAYBY = True

FLEET_PARAMS = dict(speed=1.2, load_s=15, capacity=2)
# Battery: a 5 kWh LFP pack; ~0.5 kWh per km with a load on board (a heavy latent-lift AMR),
# 50 W standby, 3 kW charging contacts, charge below 25%. Driving 1.2 m/s draws ~2.2 kW,
# so a vehicle busy half the time needs a charger ~35% of the time: every parking bay has
# charging contacts, plus two fast-charge spurs.
BATTERY = dict(capacity_kwh=5.0, drive_kwh_per_m=0.0005, idle_kw=0.05, charge_kw=3.0, threshold=0.25)


def value_added(prods, table, stations):
    revenue = sum(p["good_rate"] * p["price"] for p in prods)
    mat = 0.0
    unit_cost = {m[0]: m[1] for m in MATERIALS}
    for p in prods:
        m = p["material_cost"]  # the whole bill; the listed materials are part of it
        p["total_material"] = m
        mat += p["rate"] * m
    # energy: busy share x busy kW + rest x idle kW (on shift), off kW off shift
    kw = 0.0
    for k, st in stations.items():
        row = table[k]
        b, i, su, d, o = st["power"]
        su = b if su is None else su
        shift = row.get("shift", 1.0)
        busy = row.get("busy", 0.0)
        setup = row.get("setup_share", 0.0)
        avail = row.get("avail", 1.0)
        on = shift * (busy * b + setup * su + (1 - busy - setup) * avail * i + (1 - avail) * d)
        kw += st["servers"] * (on + (1 - shift) * o)
    energy = kw * UTILITIES["power_price"]
    return revenue, mat, energy, kw


# =======================================================================================
# Writing RON
# =======================================================================================

def fnum(x):
    s = f"{x:.2f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def wrap_comment(text, indent, width=100):
    words = text.split()
    lines, cur = [], ""
    for w in words:
        if cur and len(indent) + 3 + len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return "".join(f"{indent}// {l}\n" for l in lines)


def main():
    stations, order = build()
    prods = products()
    rates(prods)
    table = station_loads(stations, prods)
    hop = hops(prods, stations)
    problems = check(stations, order, prods, table, hop)
    problems += [f"{a} and {b} are visited in both orders" for a, b in deadlock_order_check(prods, stations)]
    revenue, mat, energy, kw = value_added(prods, table, stations)
    va_rate = (revenue - mat - energy) / revenue

    report = "--report" in sys.argv
    if report:
        for f in FACTORIES:
            rows = sorted(((table[s["key"]]["rho"], s["key"]) for s in f["stations"]), reverse=True)
            trips, agv_u = agv_estimate(f, hop, stations)
            print(f"{f['id']:5s} rate {FACTORY_RATE[f['id']]:5.1f}/h  top: " +
                  ", ".join(f"{k.split('.')[1]} {r:.2f}" for r, k in rows[:4]) +
                  f"  | AGV trips {trips:.0f}/h util~{agv_u:.2f}")
        for p in prods:
            print(f"   {p['id']:8s} {p['rate']:6.2f}/h price {p['price']:7.0f} mat {p['material_cost']:7.0f} "
                  f"share {p['material_cost'] / p['price']:.2f} revenue {p['good_rate'] * p['price']:7.0f}/h")
        print(f"revenue {revenue:.0f}/h material {mat:.0f}/h energy {energy:.0f}/h ({kw:.0f} kW) "
              f"VA rate {va_rate:.3f}")
        truck = sum(r for (a, b), (r, k) in hop.items() if k == "truck")
        print(f"truck part flow {truck:.1f}/h; material units/h "
              f"{sum(p['rate'] * sum(p.get('materials', {}).values()) for p in prods):.1f}")
    if problems:
        for x in problems:
            print("PROBLEM:", x, file=sys.stderr)
        sys.exit(1)

    w = []
    out = w.append
    out(HEADER.format(va=va_rate * 100, rev=revenue, mat=mat, energy=energy, kw=kw,
                      n_st=len(stations), n_agv=sum(FLEETS.values()), **MEASURED_28D))
    out("Scene(\n")
    out('    name: "Demo smart industrial complex",\n')
    out('    description: "Eight factories on a 640 m x 220 m site: battery cells, auto parts & EV modules, '
        'semiconductor packaging, precision machining, industrial textiles, pharma fill & finish, food packaging '
        'and electronics assembly, tied together by AGVs, trucks and a shared logistics hub.",\n')
    out("    seed: 2024,\n")
    out("    // A week, Sunday 00:00 to Sunday 00:00; the first day is excluded from KPIs (the long\n")
    out("    // formation, aging and freeze-drying steps take most of a day to fill).\n")
    out('    run: (until: "7d", warmup: "1d"),\n\n')

    # utilities
    out("    // Industrial medium-voltage tariff (energy + network charges, before tax) and the grid's\n")
    out("    // average carbon intensity (a gas/coal/nuclear/renewables mix of ~0.44 kg CO2 per kWh).\n")
    out(f"    utilities: (power_price: {UTILITIES['power_price']}, co2_kg_per_kwh: {UTILITIES['co2_kg_per_kwh']}, "
        f"currency: \"{UTILITIES['currency']}\"),\n\n")

    # factories
    out("    // Four columns x two rows of 96 m x 60 m halls; 34 m streets between the columns and the\n")
    out("    // central avenue (y = 110) between the rows. Docks face the avenue.\n")
    out("    factories: [\n")
    for f in FACTORIES:
        x0, y0 = f["origin"]
        out(f"        // {f['industry']}: unit = {f['unit']}.\n")
        out(f'        (id: "{f["id"]}", name: "{f["name"]}", industry: "{f["industry"]}",\n'
            f"         origin: ({fnum(x0)}, {fnum(y0)}), size: ({fnum(HALL_W)}, {fnum(HALL_D)}),"
            f' agv: "{f["id"]}_agv", dock: "dock_{f["id"]}"),\n')
    out("    ],\n\n")

    # calendars
    out("    // Shift calendars. t = 0 is Sunday 00:00; offsets are hours into the period.\n")
    out("    calendars: [\n")
    for cid, c in CALENDARS.items():
        out(wrap_comment(c["why"], "        "))
        shifts = ", ".join(f'("{dur(a * H)}", "{dur(b * H)}")' for a, b in c["shifts"])
        out(f'        (id: "{cid}", period: "{dur(c["period"])}", shifts: [')
        out(shifts)
        out("]),\n")
    out("    ],\n\n")

    # staff
    out("    // Operators per factory: one pool per factory on the factory's calendar, sized to the\n")
    out("    // crews of its manned stations (crew x servers), i.e. the line is fully manned; planners\n")
    out("    // can cut a pool to see where labour becomes the bottleneck.\n")
    out("    staff: [\n")
    for f in FACTORIES:
        need = sum(s["crew"] * s["servers"] for s in f["stations"])
        f["pool"] = f"{f['id']}_crew"
        out(f'        (id: "{f["pool"]}", factory: "{f["id"]}", size: {need}, calendar: "{f["staff_cal"]}"),'
            f" // {sum(1 for s in f['stations'] if s['crew'])} manned stations\n")
    out("    ],\n\n")

    # materials
    out("    // Bought-in materials: supplier -> hub -> factory stock; consumed when a part is released.\n")
    out("    // Hub reorder points cover the demand over the lead time plus safety stock; factory\n")
    out("    // reorder points cover a few hours of use while the truck comes from the hub.\n")
    out("    // A product's whole material bill is its `material_cost` plus these unit costs (the\n")
    out("    // products below list the remainder as `material_cost`).\n")
    out("    materials: [\n")
    use = {}
    use_on_shift = {}
    for p in prods:
        # Material is taken when a part is released to its first station, so only while
        # that station works: a factory on five days draws 7/5 of its average rate.
        first = stations[p["steps"][0]["at"][0]]
        for m, q in p.get("materials", {}).items():
            use[m] = use.get(m, 0.0) + q * p["rate"]
            use_on_shift[m] = use_on_shift.get(m, 0.0) + q * p["rate"] / on_share(station_cal(first))
    for (mid, cost, lead, why) in MATERIALS:
        lead_h = float(lead.rstrip("d")) * 24
        d = use.get(mid, 0.0)
        d_shift = use_on_shift.get(mid, 0.0)
        # hub: reorder at the lead-time demand at the on-shift rate (the lead time may fall
        # on working days only) + 50% safety; order two days of average use; start with
        # the reorder point plus one order. Factory: reorder at 8 h of use (the truck comes
        # within the hour), order 12 h of use but at most one truckload, start with a day
        # of stock.
        rop = math.ceil(d_shift * lead_h * 1.5)
        oq = math.ceil(d * 48)
        hub0 = rop + oq
        frop = math.ceil(d * 8)
        fo = min(TRUCK["capacity"], max(math.ceil(d * 12), 10))
        f0 = math.ceil(d * 24)
        on_shift = "" if d_shift <= d * 1.001 else f" ({d_shift:.1f}/h on shift)"
        out(wrap_comment(f"{why}; use ~{d:.1f}/h{on_shift}, {d_shift * lead_h:.0f} over the {lead} lead time",
                         "        "))
        out(f'        (id: "{mid}", unit_cost: {fnum(cost)}, hub_initial: {hub0}, reorder_point: {rop}, '
            f'order_quantity: {oq}, lead_time: "{lead}",\n'
            f"         factory_initial: {f0}, factory_reorder: {frop}, factory_order: {fo}),\n")
    out("    ],\n\n")

    # products
    unit_cost = {m[0]: m[1] for m in MATERIALS}
    out(f"    // Products. Planned value-added rate of the complex: {va_rate * 100:.1f}% "
        f"(revenue {revenue:.0f} EUR/h,\n")
    out(f"    // materials {mat:.0f} EUR/h, energy ~{energy:.0f} EUR/h); the programme's target is 30%.\n")
    out("    products: [\n")
    for p in prods:
        fac = fac_by_id(p["factory"])
        out(f"        // {p['name']}: released {p['rate']:.2f}/h at {fac['name']}")
        if len(p["fac_list"]) > 1:
            out(f", finished at {fac_by_id(p['fac_list'][-1])['name']}")
        out(f"; material bill {p['total_material']:.0f} of price {p['price']:.0f}"
            f" ({(1 - p['total_material'] / p['price']) * 100:.0f}% margin over material).\n")
        if p.get("why"):
            out(wrap_comment(p["why"], "        "))
        sink = f"ship_{p['fac_list'][-1]}"
        rest = p["material_cost"] - sum(q * unit_cost[k] for k, q in p.get("materials", {}).items())
        assert rest >= 0, p["id"]
        out(f'        (id: "{p["id"]}", name: "{p["name"]}", price: {fnum(p["price"])}, '
            f'material_cost: {fnum(rest)}, sink: "{sink}",\n')
        if p.get("materials"):
            mats = ", ".join(f'"{k}": {v}' for k, v in sorted(p["materials"].items()))
            out(f"         materials: {{{mats}}},\n")
        out("         routing: [\n")
        prev_fac = None
        for s in p["steps"]:
            fac_id = s["at"][0].split(".")[0]
            if prev_fac and fac_id != prev_fac:
                out(f"            // -- by truck from dock_{prev_fac} to dock_{fac_id} --\n")
            prev_fac = fac_id
            at = ", ".join(f'"{stations[a]["id"]}"' for a in s["at"])
            c = f" // {s['why']}" if s["why"] else ""
            out(f'            (op: "{s["op"]}", at: [{at}], time: {s["time"].ron}),{c}\n')
        out("        ]),\n")
    out("    ],\n\n")

    # stations
    out("    // Stations. Comments give the planned load (weekly average of busy + setup time over\n")
    out("    // on-shift, available time) from scripts/gen_demo_complex.py. Power is kW per server:\n")
    out("    // (busy, idle = standby when starved/blocked, setup, down, off shift).\n")
    out("    stations: [\n")
    for f in FACTORIES:
        out(f"        // ---- {f['name']} ({f['industry']}), calendar {f['calendar']} ----\n")
        for s in f["stations"]:
            row = table[s["key"]]
            if s["why"]:
                out(wrap_comment(s["why"], "        "))
            cal = station_cal(s)
            parts = [f'id: "{s["id"]}"', f'name: "{s["name"]}"', f"kind: {s['kind']}", f'factory: "{f["id"]}"',
                     f"pos: ({fnum(s['pos'][0])}, {fnum(s['pos'][1])})"]
            if s["servers"] != 1:
                parts.append(f"servers: {s['servers']}")
            if s["buffer"] is not None:
                parts.append(f"buffer: {s['buffer']}")
            line2 = []
            if s["setup"] is not None:
                line2.append(f"setup: {s['setup'].ron}")
            if s["fail"]:
                line2.append(f'failures: (mtbf: "{dur(s["fail"][0] * H)}", mttr: "{dur(s["fail"][1] * M)}")')
            if s["scrap"]:
                line2.append(f"scrap: {s['scrap']:g}")
            if cal:
                line2.append(f'calendar: "{cal}"')
            b, i, su, d, o = s["power"]
            pw = f"power: (busy_kw: {b:g}, idle_kw: {i:g}, "
            if su is not None:
                pw += f"setup_kw: {su:g}, "
            pw += f"down_kw: {d:g}, off_kw: {o:g})"
            line3 = [pw]
            if s["agv"]:
                line3.append(f'node: "{s["id"]}_n"')
            if s["crew"]:
                line3.append(f'pool: "{f["pool"]}", crew: {s["crew"]}')
            out(f"        ({', '.join(parts)}, // load {row['rho']:.2f}\n")
            if line2:
                out(f"         {', '.join(line2)},\n")
            out(f"         {', '.join(line3)}),\n")
    out("    ],\n\n")

    # conveyors
    out("    conveyors: [\n")
    for a, b, length, speed, cap, why in CONVEYORS:
        c = f" // {why}" if why else ""
        out(f'        (id: "{stations[a]["id"]}__{stations[b]["id"]}", from: "{stations[a]["id"]}", '
            f'to: "{stations[b]["id"]}", length_m: {fnum(length)}, speed_m_s: {fnum(speed)}, capacity: {cap}),{c}\n')
    out("    ],\n\n")

    # sources
    out("    // Orders are released as Poisson streams at each factory's receiving side. Rates are the\n")
    out("    // weekly averages: factories that stop at night or on weekends work the backlog off on\n")
    out("    // shift, so their on-shift load is rate x 168 h / on-shift hours.\n")
    out("    sources: [\n")
    by_fac = {}
    for p in prods:
        by_fac.setdefault(p["factory"], []).append(p)
    for f in FACTORIES:
        ps = by_fac[f["id"]]
        x0, y0 = f["origin"]
        mix = ", ".join(f'"{p["id"]}": {fnum(p["weight"])}' for p in ps)
        out(f'        (id: "orders_{f["id"]}", arrivals: Poisson(per_hour: {fnum(FACTORY_RATE[f["id"]])}), '
            f'mix: {{{mix}}}, due: "{DUE[f["id"]]}", pos: ({fnum(x0 - 6)}, {fnum(y0 + 7)})),\n')
    out("    ],\n\n")

    # sinks
    out("    sinks: [\n")
    for f in FACTORIES:
        x0, y0 = f["origin"]
        dock_y = y0 + HALL_D if f["row"] == 0 else y0
        out(f'        (id: "ship_{f["id"]}", factory: "{f["id"]}", pos: ({fnum(x0 + HALL_W / 2 + 8)}, {fnum(dock_y)})),\n')
    out("    ],\n\n")

    # paths
    out("    // AGV path graphs, one per hall. Each is a one-way ring: the south lane runs east, the\n")
    out("    // north lane west, joined at both ends. Nothing stands on the ring itself: station nodes\n")
    out("    // sit on one-way lay-bys beside it (in from one ring node, out to the next), parking bays\n")
    out("    // (home, with charging contacts), the two fast chargers and the dock gate on short two-way\n")
    out("    // spurs, so a vehicle loading or charging never blocks through traffic. (With dead-end\n")
    out("    // spurs at busy stations a vehicle waiting on the ring for an occupied station node blocks\n")
    out("    // the one that wants to leave it; lay-bys let it leave forwards.) Node ids are prefixed\n")
    out("    // with the factory id.\n")
    out("    paths: [\n")
    for f in FACTORIES:
        write_paths(out, f, stations, hop)
    out("    ],\n\n")

    # fleets
    out("    // AGV fleets: latent-lift AMRs carrying trays / pallets, two per trip when they share the\n")
    out("    // pickup and drop. 1.2 m/s cruise (safety-rated speed near people), 15 s to lift or set\n")
    out("    // down. Battery: 5 kWh LFP, ~0.5 kWh/km loaded, 50 W standby, 3 kW charging below 25%;\n")
    out("    // driving draws ~2.2 kW, so a vehicle busy half the time charges ~35% of the time, which\n")
    out("    // is why every parking bay has charging contacts besides the two fast-charge spurs.\n")
    out("    fleets: [\n")
    for f in FACTORIES:
        trips, util = agv_estimate(f, hop, stations)
        out(f"        // ~{trips:.0f} transport orders per on-shift hour; estimated utilisation ~{util:.0%}.\n")
        homes = ", ".join(f'"{h}"' for h in f["homes"])
        out(f'        (id: "{f["id"]}_agv", paths: "{f["id"]}_floor", count: {FLEETS[f["id"]]}, '
            f'speed_m_s: {FLEET_PARAMS["speed"]}, capacity: {FLEET_PARAMS["capacity"]}, '
            f'load_time: "{dur(FLEET_PARAMS["load_s"])}",\n')
        out(f"         home: [{homes}],\n")
        out(f"         battery: (capacity_kwh: {BATTERY['capacity_kwh']}, drive_kwh_per_m: {BATTERY['drive_kwh_per_m']}, "
            f"idle_kw: {BATTERY['idle_kw']}, charge_kw: {BATTERY['charge_kw']}, threshold: {BATTERY['threshold']}), "
            "rule: NearestIdle),\n")
    out("    ],\n\n")

    # roads
    write_roads(out)

    # trucks
    truck = sum(r for (a, b), (r, k) in hop.items() if k == "truck")
    mat_units = sum(p["rate"] * sum(p.get("materials", {}).values()) for p in prods)
    out(f"    // Electric box trucks / yard shuttles. Loads: ~{truck:.0f} parts/h between docks and\n")
    out(f"    // ~{mat_units:.0f} material units/h from the hub, and every finished unit back to the hub\n")
    out(f"    // (~{sum(p['good_rate'] for p in prods):.0f}/h). 40 units per load (roll cages / pallets; factory material orders\n")
    out("    // are at most one load),\n")
    out("    // 10 m/s (36 km/h site limit), 5 min to load or unload; a truck leaves when 12 units wait for\n")
    out("    // one destination. ~1.1 kWh/km for a 7.5 t electric truck.\n")
    out(f'    trucks: (count: {TRUCK["count"]}, capacity: {TRUCK["capacity"]}, speed_m_s: {TRUCK["speed"]}, '
        f'load_time: "{TRUCK["load"]}", dispatch: Batch(min_load: {TRUCK["min_load"]}), '
        f'kwh_per_km: {TRUCK["kwh_per_km"]}),\n')
    out(")\n")

    text = "".join(w)
    with open(OUT, "w") as fh:
        fh.write(text)
    print(f"wrote {os.path.relpath(OUT)}: {len(stations)} stations, {len(prods)} products, "
          f"{sum(FLEETS.values())} AGVs, planned VA rate {va_rate * 100:.1f}%")


def write_paths(out, f, stations, hop):
    fid = f["id"]
    x0, y0 = f["origin"]
    lo, hi = f["lo"], f["hi"]
    xw, xe = x0 + 4.0, x0 + HALL_W - 4.0
    sts = f["stations"]
    nodes = []  # (id, x, y, comment)
    edges = []  # (from, to, two_way)
    # ring nodes at every station column on both lanes, plus corners
    xs_lo = sorted({s["node_pos"][0] for s in sts if s["lane"] == "lo"})
    xs_hi = sorted({s["node_pos"][0] for s in sts if s["lane"] == "hi"})
    # parking bays and chargers between the lanes
    n_home = FLEETS[fid]
    home_xs = [x0 + 14.0 + i * 8.0 for i in range(n_home)]
    charger_xs = [x0 + HALL_W - 14.0, x0 + HALL_W - 26.0]
    # the dock door, mid north wall (row 0) or mid south wall (row 1), between two station spurs
    lane_xs = xs_hi if f["row"] == 0 else xs_lo
    mid = x0 + HALL_W / 2
    a = max(x for x in lane_xs if x <= mid)
    b = min(x for x in lane_xs if x > a)
    gate_x = round((a + b) / 2)
    lo_xs = sorted(set(xs_lo) | set(home_xs) | ({gate_x} if f["row"] == 1 else set()))
    hi_xs = sorted(set(xs_hi) | set(charger_xs) | ({gate_x} if f["row"] == 0 else set()), reverse=True)

    all_ring = lo_xs + hi_xs
    assert len(set(lo_xs)) == len(lo_xs) and len(set(hi_xs)) == len(hi_xs)
    assert all(float(x).is_integer() for x in all_ring), all_ring

    def rid(lane, x):
        return f"{fid}_{lane}{int(round(x - x0)):02d}"

    ring = [(f"{fid}_sw", xw, lo)] + [(rid("s", x), x, lo) for x in lo_xs] + [(f"{fid}_se", xe, lo),
                                                                               (f"{fid}_ne", xe, hi)]
    ring += [(rid("n", x), x, hi) for x in hi_xs] + [(f"{fid}_nw", xw, hi)]
    for n in ring:
        nodes.append(n)
    for a, b in zip(ring, ring[1:] + ring[:1]):
        edges.append((a[0], b[0], False))
    # station spurs
    for s in sts:
        if not s["agv"]:
            continue
        x, y = s["node_pos"]
        nid = f"{s['id']}_n"
        nodes.append((nid, x, y))
        r = rid("s" if s["lane"] == "lo" else "n", x)
        if LAYBY:
            ids = [n[0] for n in ring]
            nxt = ids[(ids.index(r) + 1) % len(ids)]
            edges.append((r, nid, "in"))
            edges.append((nid, nxt, "out"))
        else:
            edges.append((r, nid, True))
    # parking bays off the south lane, chargers off the north lane, the dock gate
    homes = []
    for i, x in enumerate(home_xs):
        nid = f"{fid}_park{i + 1}"
        nodes.append((nid, x, lo + 6.0))
        edges.append((rid("s", x), nid, True))
        homes.append(nid)
    chargers = []
    for i, x in enumerate(charger_xs):
        nid = f"{fid}_chg{i + 1}"
        nodes.append((nid, x, hi - 6.0))
        edges.append((rid("n", x), nid, True))
        chargers.append(nid)
    if f["row"] == 0:
        nodes.append((f"{fid}_gate", gate_x, y0 + HALL_D - 3.0))
        edges.append((rid("n", gate_x), f"{fid}_gate", True))
    else:
        nodes.append((f"{fid}_gate", gate_x, y0 + 3.0))
        edges.append((rid("s", gate_x), f"{fid}_gate", True))
    f["homes"] = homes
    out(f'        (id: "{fid}_floor", factory: "{fid}",\n')
    out("         nodes: [\n")
    for i in range(0, len(nodes), 4):
        chunk = nodes[i:i + 4]
        out("            " + " ".join(f'("{n}", {fnum(x)}, {fnum(y)}),' for n, x, y in chunk) + "\n")
    out("         ],\n")
    out("         edges: [\n")
    ring_e = [e for e in edges if e[2] is False]
    spur_e = [e for e in edges if e[2] is True]
    lay_e = [e for e in edges if isinstance(e[2], str)]
    out("            // the one-way ring\n")
    for i in range(0, len(ring_e), 4):
        out("            " + " ".join(f'(from: "{a}", to: "{b}", two_way: false),' for a, b, _ in ring_e[i:i + 4])
            + "\n")
    if lay_e:
        out("            // one-way lay-bys through the station nodes (in from one ring node, out to the next)\n")
        for i in range(0, len(lay_e), 4):
            out("            " + " ".join(f'(from: "{a}", to: "{b}", two_way: false),' for a, b, _ in lay_e[i:i + 4])
                + "\n")
    out("            // two-way spurs to stations, parking bays, chargers and the dock gate\n")
    for i in range(0, len(spur_e), 4):
        out("            " + " ".join(f'(from: "{a}", to: "{b}"),' for a, b, _ in spur_e[i:i + 4]) + "\n")
    out("         ],\n")
    out(f"         chargers: [{', '.join(chr(34) + c + chr(34) for c in chargers + homes)}]),\n")


def write_roads(out):
    nodes = [("hub", HUB[0], HUB[1])]
    edges = []
    # street grid: intersections of the north-south streets with the perimeter roads and the avenue
    for k, x in enumerate(STREET_X):
        for name, y in (("s", PERIM_Y[0]), ("a", AVENUE_Y), ("n", PERIM_Y[1])):
            nodes.append((f"x{k}{name}", x, y))
        edges.append((f"x{k}s", f"x{k}a"))
        edges.append((f"x{k}a", f"x{k}n"))
    edges.append(("hub", "x0a"))
    # docks: a junction on the avenue in front of each column, spurs to the two halls' docks
    for k in range(4):
        xc = COL_X[k] + HALL_W / 2
        nodes.append((f"av{k}", xc, AVENUE_Y))
        for f in FACTORIES:
            if f["col"] == k:
                y = ROW_Y[0] + HALL_D + 6 if f["row"] == 0 else ROW_Y[1] - 6
                nodes.append((f"dock_{f['id']}", xc, y))
                edges.append((f"av{k}", f"dock_{f['id']}"))
        edges.append((f"x{k}a", f"av{k}"))
        edges.append((f"av{k}", f"x{k + 1}a"))
    for k in range(4):
        for name in ("s", "n"):
            edges.append((f"x{k}{name}", f"x{k + 1}{name}"))
    out("    // Site roads: a perimeter ring, five north-south streets and the central avenue; every\n")
    out("    // dock is a short spur off the avenue. The hub (warehouse, supplier gate) is at the west end.\n")
    out("    roads: (\n")
    out("        nodes: [\n")
    for i in range(0, len(nodes), 4):
        out("            " + " ".join(f'("{n}", {fnum(x)}, {fnum(y)}),' for n, x, y in nodes[i:i + 4]) + "\n")
    out("        ],\n")
    out("        edges: [\n")
    for i in range(0, len(edges), 6):
        out("            " + " ".join(f'("{a}", "{b}"),' for a, b in edges[i:i + 6]) + "\n")
    out("        ],\n")
    out('        hub: "hub",\n')
    out("    ),\n\n")


HEADER = """\
// Demo smart industrial complex: eight factories on one site, generated by
// scripts/gen_demo_complex.py. Do not edit by hand: change the script and run
//     python3 scripts/gen_demo_complex.py --report
// which also prints the planned load of every station.
//
// The site (640 m x 220 m): four columns x two rows of halls along a central avenue, a
// perimeter road and a shared logistics hub (warehouse + supplier gate) at the west gate.
//
//   north row:  aut (auto parts, EV modules)  elx (electronics)  tex (textiles)  food (food packaging)
//   south row:  bat (battery cells)           semi (chip packaging)  mac (machining)  bio (pharma fill & finish)
//
// {n_st} stations, {n_agv} AGVs on eight one-way ring path graphs, six trucks. Two products cross
// factories: EV battery modules (cells from bat, module assembly in aut) and inverter power
// stages (power modules packaged in semi, burn-in and test in elx).
//
// Capacity planning. Every station's planned load (weekly average busy + setup time over
// its available on-shift time) is below 0.85; the script refuses to write the scene
// otherwise. The most loaded stations of a factory are planned close together (the
// coaters and the stackers in bat, the 5-axis machining centres and the paint line in
// aut, the wire bonders and test handlers in semi ...) so the bottleneck moves when one of
// them breaks down or a shift change stops the manned ones.
//
// Value added: planned revenue {rev:.0f} EUR/h, materials {mat:.0f} EUR/h, energy ~{energy:.0f} EUR/h
// (~{kw:.0f} kW average), a value-added rate of {va:.1f}% -- the programme's current level
// is 25%, its target 30%. Try the experiments: more AGVs, a third shift, less scrap.
//
// Steady state, measured over 28 days (`twin run scenes/demo-complex.ron --until 28d`,
// statistics after the first day; mean and range over seeds 1, 2, 3 and 2024):
//   throughput        {thr}
//   WIP               {wip}
//   lead time         {lt}
//   value-added rate  {va_measured}
// and no material shortages. crates/twin-core/tests/long_run.rs runs it for four weeks and
// checks that every product finishes what it releases and that the WIP does not drift.

"""

# Measured with `twin run scenes/demo-complex.ron --until 28d --json --seed S` for S = 1, 2,
# 3, 2024 (the script cannot compute them: update them when the scene changes).
MEASURED_28D = dict(
    thr="131 good units/h (130.9-132.0)",
    wip="1,385 parts (1,358-1,409), orders waiting at the sources of factories\n"
        "//                     that stop at night or at weekends included",
    lt="10.4 h mean (10.3-10.6), p50 6.2 h, p95 32 h",
    va_measured="25.1% (24.9-25.2%)",
)

if __name__ == "__main__":
    main()
