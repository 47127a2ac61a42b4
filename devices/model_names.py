"""Marketing names for the model identifiers phones report ("iPhone15C2" is "iPhone 14 Pro").

Apple devices report their hardware identifier (DeviceModel "iPhone15C2", the
User-Agent "Apple-iPhone15C2/2104.136"; the comma of "iPhone15,2" becomes a
"C"). Samsung reports the SM- code with a region suffix ("SM-S918B",
"SM-S918U1"); the suffix does not change the name. Unknown codes have no
name: pages and mails then show the code alone. People see the name beside
the code, never instead of it (rules match the code).
"""

import re

# Apple identifier (comma form) -> name. Current and recent iPhones and iPads.
APPLE = {
    "iPhone10,1": "iPhone 8",
    "iPhone10,4": "iPhone 8",
    "iPhone10,2": "iPhone 8 Plus",
    "iPhone10,5": "iPhone 8 Plus",
    "iPhone10,3": "iPhone X",
    "iPhone10,6": "iPhone X",
    "iPhone11,2": "iPhone XS",
    "iPhone11,4": "iPhone XS Max",
    "iPhone11,6": "iPhone XS Max",
    "iPhone11,8": "iPhone XR",
    "iPhone12,1": "iPhone 11",
    "iPhone12,3": "iPhone 11 Pro",
    "iPhone12,5": "iPhone 11 Pro Max",
    "iPhone12,8": "iPhone SE (2nd generation)",
    "iPhone13,1": "iPhone 12 mini",
    "iPhone13,2": "iPhone 12",
    "iPhone13,3": "iPhone 12 Pro",
    "iPhone13,4": "iPhone 12 Pro Max",
    "iPhone14,4": "iPhone 13 mini",
    "iPhone14,5": "iPhone 13",
    "iPhone14,2": "iPhone 13 Pro",
    "iPhone14,3": "iPhone 13 Pro Max",
    "iPhone14,6": "iPhone SE (3rd generation)",
    "iPhone14,7": "iPhone 14",
    "iPhone14,8": "iPhone 14 Plus",
    "iPhone15,2": "iPhone 14 Pro",
    "iPhone15,3": "iPhone 14 Pro Max",
    "iPhone15,4": "iPhone 15",
    "iPhone15,5": "iPhone 15 Plus",
    "iPhone16,1": "iPhone 15 Pro",
    "iPhone16,2": "iPhone 15 Pro Max",
    "iPhone17,1": "iPhone 16 Pro",
    "iPhone17,2": "iPhone 16 Pro Max",
    "iPhone17,3": "iPhone 16",
    "iPhone17,4": "iPhone 16 Plus",
    "iPhone17,5": "iPhone 16e",
    "iPhone18,1": "iPhone 17 Pro",
    "iPhone18,2": "iPhone 17 Pro Max",
    "iPhone18,3": "iPhone 17",
    "iPhone18,4": "iPhone Air",
    # iPad
    "iPad7,5": "iPad (6th generation)",
    "iPad7,6": "iPad (6th generation)",
    "iPad7,11": "iPad (7th generation)",
    "iPad7,12": "iPad (7th generation)",
    "iPad11,6": "iPad (8th generation)",
    "iPad11,7": "iPad (8th generation)",
    "iPad12,1": "iPad (9th generation)",
    "iPad12,2": "iPad (9th generation)",
    "iPad13,18": "iPad (10th generation)",
    "iPad13,19": "iPad (10th generation)",
    "iPad15,7": "iPad (A16)",
    "iPad15,8": "iPad (A16)",
    # iPad Air
    "iPad11,3": "iPad Air (3rd generation)",
    "iPad11,4": "iPad Air (3rd generation)",
    "iPad13,1": "iPad Air (4th generation)",
    "iPad13,2": "iPad Air (4th generation)",
    "iPad13,16": "iPad Air (5th generation)",
    "iPad13,17": "iPad Air (5th generation)",
    "iPad14,8": "iPad Air 11-inch (M2)",
    "iPad14,9": "iPad Air 11-inch (M2)",
    "iPad14,10": "iPad Air 13-inch (M2)",
    "iPad14,11": "iPad Air 13-inch (M2)",
    "iPad15,3": "iPad Air 11-inch (M3)",
    "iPad15,4": "iPad Air 11-inch (M3)",
    "iPad15,5": "iPad Air 13-inch (M3)",
    "iPad15,6": "iPad Air 13-inch (M3)",
    # iPad mini
    "iPad11,1": "iPad mini (5th generation)",
    "iPad11,2": "iPad mini (5th generation)",
    "iPad14,1": "iPad mini (6th generation)",
    "iPad14,2": "iPad mini (6th generation)",
    "iPad16,1": "iPad mini (A17 Pro)",
    "iPad16,2": "iPad mini (A17 Pro)",
    # iPad Pro
    **{f"iPad8,{n}": "iPad Pro 11-inch (1st generation)" for n in (1, 2, 3, 4)},
    **{f"iPad8,{n}": "iPad Pro 12.9-inch (3rd generation)" for n in (5, 6, 7, 8)},
    "iPad8,9": "iPad Pro 11-inch (2nd generation)",
    "iPad8,10": "iPad Pro 11-inch (2nd generation)",
    "iPad8,11": "iPad Pro 12.9-inch (4th generation)",
    "iPad8,12": "iPad Pro 12.9-inch (4th generation)",
    **{f"iPad13,{n}": "iPad Pro 11-inch (3rd generation)" for n in (4, 5, 6, 7)},
    **{f"iPad13,{n}": "iPad Pro 12.9-inch (5th generation)" for n in (8, 9, 10, 11)},
    "iPad14,3": "iPad Pro 11-inch (4th generation)",
    "iPad14,4": "iPad Pro 11-inch (4th generation)",
    "iPad14,5": "iPad Pro 12.9-inch (6th generation)",
    "iPad14,6": "iPad Pro 12.9-inch (6th generation)",
    "iPad16,3": "iPad Pro 11-inch (M4)",
    "iPad16,4": "iPad Pro 11-inch (M4)",
    "iPad16,5": "iPad Pro 13-inch (M4)",
    "iPad16,6": "iPad Pro 13-inch (M4)",
}

# Samsung SM- code without its region suffix -> name. Popular Galaxy phones and tablets.
SAMSUNG = {
    # S
    "SM-G970": "Galaxy S10e",
    "SM-G973": "Galaxy S10",
    "SM-G975": "Galaxy S10+",
    "SM-G980": "Galaxy S20",
    "SM-G981": "Galaxy S20 5G",
    "SM-G985": "Galaxy S20+",
    "SM-G986": "Galaxy S20+ 5G",
    "SM-G988": "Galaxy S20 Ultra",
    "SM-G780": "Galaxy S20 FE",
    "SM-G781": "Galaxy S20 FE 5G",
    "SM-G991": "Galaxy S21",
    "SM-G996": "Galaxy S21+",
    "SM-G998": "Galaxy S21 Ultra",
    "SM-G990": "Galaxy S21 FE",
    "SM-S901": "Galaxy S22",
    "SM-S906": "Galaxy S22+",
    "SM-S908": "Galaxy S22 Ultra",
    "SM-S911": "Galaxy S23",
    "SM-S916": "Galaxy S23+",
    "SM-S918": "Galaxy S23 Ultra",
    "SM-S711": "Galaxy S23 FE",
    "SM-S921": "Galaxy S24",
    "SM-S926": "Galaxy S24+",
    "SM-S928": "Galaxy S24 Ultra",
    "SM-S721": "Galaxy S24 FE",
    "SM-S931": "Galaxy S25",
    "SM-S936": "Galaxy S25+",
    "SM-S938": "Galaxy S25 Ultra",
    "SM-S937": "Galaxy S25 Edge",
    # Note
    "SM-N970": "Galaxy Note10",
    "SM-N975": "Galaxy Note10+",
    "SM-N980": "Galaxy Note20",
    "SM-N981": "Galaxy Note20 5G",
    "SM-N985": "Galaxy Note20 Ultra",
    "SM-N986": "Galaxy Note20 Ultra 5G",
    # Z
    "SM-F900": "Galaxy Fold",
    "SM-F907": "Galaxy Fold 5G",
    "SM-F916": "Galaxy Z Fold2",
    "SM-F926": "Galaxy Z Fold3",
    "SM-F936": "Galaxy Z Fold4",
    "SM-F946": "Galaxy Z Fold5",
    "SM-F956": "Galaxy Z Fold6",
    "SM-F966": "Galaxy Z Fold7",
    "SM-F700": "Galaxy Z Flip",
    "SM-F707": "Galaxy Z Flip 5G",
    "SM-F711": "Galaxy Z Flip3",
    "SM-F721": "Galaxy Z Flip4",
    "SM-F731": "Galaxy Z Flip5",
    "SM-F741": "Galaxy Z Flip6",
    "SM-F766": "Galaxy Z Flip7",
    # A
    "SM-A515": "Galaxy A51",
    "SM-A715": "Galaxy A71",
    "SM-A525": "Galaxy A52",
    "SM-A526": "Galaxy A52 5G",
    "SM-A528": "Galaxy A52s 5G",
    "SM-A135": "Galaxy A13",
    "SM-A136": "Galaxy A13 5G",
    "SM-A336": "Galaxy A33 5G",
    "SM-A536": "Galaxy A53 5G",
    "SM-A145": "Galaxy A14",
    "SM-A146": "Galaxy A14 5G",
    "SM-A346": "Galaxy A34 5G",
    "SM-A546": "Galaxy A54 5G",
    "SM-A155": "Galaxy A15",
    "SM-A156": "Galaxy A15 5G",
    "SM-A256": "Galaxy A25 5G",
    "SM-A356": "Galaxy A35 5G",
    "SM-A556": "Galaxy A55 5G",
    "SM-A165": "Galaxy A16",
    "SM-A166": "Galaxy A16 5G",
    "SM-A366": "Galaxy A36 5G",
    "SM-A566": "Galaxy A56 5G",
    # XCover (rugged, common on company fleets)
    "SM-G525": "Galaxy XCover 5",
    "SM-G736": "Galaxy XCover6 Pro",
    "SM-G556": "Galaxy XCover7",
    # Tab
    "SM-T870": "Galaxy Tab S7",
    "SM-T875": "Galaxy Tab S7",
    "SM-T970": "Galaxy Tab S7+",
    "SM-T975": "Galaxy Tab S7+",
    "SM-X700": "Galaxy Tab S8",
    "SM-X706": "Galaxy Tab S8",
    "SM-X800": "Galaxy Tab S8+",
    "SM-X806": "Galaxy Tab S8+",
    "SM-X900": "Galaxy Tab S8 Ultra",
    "SM-X906": "Galaxy Tab S8 Ultra",
    "SM-X710": "Galaxy Tab S9",
    "SM-X716": "Galaxy Tab S9",
    "SM-X810": "Galaxy Tab S9+",
    "SM-X816": "Galaxy Tab S9+",
    "SM-X910": "Galaxy Tab S9 Ultra",
    "SM-X916": "Galaxy Tab S9 Ultra",
    "SM-X510": "Galaxy Tab S9 FE",
    "SM-X516": "Galaxy Tab S9 FE",
    "SM-X610": "Galaxy Tab S9 FE+",
    "SM-X616": "Galaxy Tab S9 FE+",
    "SM-X200": "Galaxy Tab A8",
    "SM-X205": "Galaxy Tab A8",
    "SM-X110": "Galaxy Tab A9",
    "SM-X115": "Galaxy Tab A9",
    "SM-X210": "Galaxy Tab A9+",
    "SM-X216": "Galaxy Tab A9+",
}

_APPLE = re.compile(r"(iPhone|iPad|iPod)(\d{1,3})[C,](\d{1,3})", re.IGNORECASE)
_SAMSUNG = re.compile(r"\bSM-([A-Z])(\d{3})", re.IGNORECASE)
_APPLE_BY_LOWER = {key.lower(): name for key, name in APPLE.items()}


def marketing_name(*codes: str | None) -> str:
    """The name of the first code (DeviceModel, then User-Agent) in the table, or ""."""
    for code in codes:
        if not code:
            continue
        match = _APPLE.search(code)
        if match:
            family, major, minor = match.groups()
            name = _APPLE_BY_LOWER.get(f"{family}{major},{minor}".lower())
            if name:
                return name
        match = _SAMSUNG.search(code)
        if match:
            name = SAMSUNG.get(f"SM-{match.group(1).upper()}{match.group(2)}")
            if name:
                return name
    return ""


def device_marketing_name(device) -> str:
    """The name for a device: its reported model, else the model in its User-Agent."""
    return marketing_name(device.device_model, device.user_agent)
