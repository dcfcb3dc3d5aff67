"""Azure's public regions: the one list behind every region rule of the simulator.

:data:`REGIONS` holds the public cloud's physical regions as ``GET /subscriptions/{id}/locations``
lists them (name, display name, geography, physical location, coordinates, paired regions,
``Recommended`` or ``Other``, availability zones); :data:`LOGICAL_REGIONS` the geography-wide
names that list also carries (``europe``, ``unitedstates``...), in which nothing can be created.
The same data drives:

* the locations endpoint (:func:`locations_body`, served by :mod:`devstack.armsim.locations`);
* the ``location`` check of every resource and of ``publishingProfile.targetRegions[].name``
  (:func:`is_known`: physical regions only, in either spelling);
* the display names the gallery service returns in ``targetRegions[].name`` (:func:`display_name`).

Sources are in ``docs/devstack.md`` ("Regions").
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Final

JsonObject = dict[str, Any]

#: The group of ``regionalDisplayName`` (``(US) East US``), which is also ``geographyGroup``.
_GROUPS: Final = {
    "US": "US",
    "APAC": "Asia Pacific",
    "EU": "Europe",
    "AF": "Africa",
    "CA": "Canada",
    "MX": "Mexico",
    "ME": "Middle East",
    "SA": "South America",
}

#: name|display name|group|geography|physical location|latitude,longitude|paired|flags
#: (flags: ``R`` regionCategory Recommended, else Other; ``Z`` availability zones).
#: Recommended first, then Other: the order the service lists them in.
_TABLE: Final = """
eastus|East US|US|United States|Virginia|37.3719,-79.8164|westus|RZ
eastus2|East US 2|US|United States|Virginia|36.6681,-78.3889|centralus|RZ
southcentralus|South Central US|US|United States|Texas|29.4167,-98.5|northcentralus|RZ
westus2|West US 2|US|United States|Washington|47.233,-119.852|westcentralus|RZ
westus3|West US 3|US|United States|Phoenix|33.4483,-112.0740|eastus|RZ
australiaeast|Australia East|APAC|Australia|New South Wales|-33.86,151.2094|australiasoutheast|RZ
southeastasia|Southeast Asia|APAC|Asia Pacific|Singapore|1.283,103.833|eastasia|RZ
northeurope|North Europe|EU|Europe|Ireland|53.3478,-6.2597|westeurope|RZ
swedencentral|Sweden Central|EU|Sweden|Gävle|60.6748,17.1412|swedensouth|RZ
uksouth|UK South|EU|United Kingdom|London|50.941,-0.799|ukwest|RZ
westeurope|West Europe|EU|Europe|Netherlands|52.3667,4.9|northeurope|RZ
centralus|Central US|US|United States|Iowa|41.5908,-93.6208|eastus2|RZ
southafricanorth|South Africa North|AF|South Africa|Johannesburg|-25.7313,28.2183|southafricawest|RZ
centralindia|Central India|APAC|India|Pune|18.5822,73.9197|southindia|RZ
eastasia|East Asia|APAC|Asia Pacific|Hong Kong|22.267,114.188|southeastasia|RZ
indonesiacentral|Indonesia Central|APAC|Indonesia|Jakarta|-6.2088,106.8456|-|RZ
japaneast|Japan East|APAC|Japan|Tokyo, Saitama|35.68,139.77|japanwest|RZ
koreacentral|Korea Central|APAC|Korea|Seoul|37.5665,126.978|koreasouth|RZ
malaysiawest|Malaysia West|APAC|Malaysia|Kuala Lumpur|3.139,101.6869|-|RZ
newzealandnorth|New Zealand North|APAC|New Zealand|Auckland|-36.8485,174.7633|-|RZ
canadacentral|Canada Central|CA|Canada|Toronto|43.653,-79.383|canadaeast|RZ
austriaeast|Austria East|EU|Austria|Vienna|48.2082,16.3738|-|RZ
belgiumcentral|Belgium Central|EU|Belgium|Brussels|50.8503,4.3517|-|RZ
denmarkeast|Denmark East|EU|Denmark|Copenhagen|55.6761,12.5683|-|RZ
francecentral|France Central|EU|France|Paris|46.3772,2.373|francesouth|RZ
germanywestcentral|Germany West Central|EU|Germany|Frankfurt|50.1109,8.6821|germanynorth|RZ
italynorth|Italy North|EU|Italy|Milan|45.4688,9.1810|-|RZ
norwayeast|Norway East|EU|Norway|Norway|59.9138,10.7522|norwaywest|RZ
polandcentral|Poland Central|EU|Poland|Warsaw|52.2333,21.0166|-|RZ
spaincentral|Spain Central|EU|Spain|Madrid|40.4259,-3.4209|-|RZ
switzerlandnorth|Switzerland North|EU|Switzerland|Zurich|47.4515,8.5645|switzerlandwest|RZ
mexicocentral|Mexico Central|MX|Mexico|Querétaro State|20.5888,-100.3898|-|RZ
uaenorth|UAE North|ME|UAE|Dubai|25.2666,55.3166|uaecentral|RZ
brazilsouth|Brazil South|SA|Brazil|Sao Paulo State|-23.55,-46.633|southcentralus|RZ
chilecentral|Chile Central|SA|Chile|Santiago|-33.4489,-70.6693|-|RZ
israelcentral|Israel Central|ME|Israel|Israel|31.2655,33.4506|-|RZ
qatarcentral|Qatar Central|ME|Qatar|Doha|25.5514,51.4393|-|RZ
northcentralus|North Central US|US|United States|Illinois|41.8819,-87.6278|southcentralus|--
westus|West US|US|United States|California|37.783,-122.417|eastus|-Z
japanwest|Japan West|APAC|Japan|Osaka|34.6939,135.5022|japaneast|-Z
jioindiawest|Jio India West|APAC|India|Jamnagar|22.4707,70.0577|jioindiacentral|--
centraluseuap|Central US EUAP|US|Canary (US)|-|41.5908,-93.6208|eastus2euap|--
eastus2euap|East US 2 EUAP|US|Canary (US)|-|36.6681,-78.3889|centraluseuap|--
westcentralus|West Central US|US|United States|Wyoming|40.89,-110.234|westus2|--
southafricawest|South Africa West|AF|South Africa|Cape Town|-34.0756,18.8432|southafricanorth|--
australiacentral|Australia Central|APAC|Australia|Canberra|-35.3075,149.1244|australiacentral2|--
australiacentral2|Australia Central 2|APAC|Australia|Canberra|-35.3075,149.1244|australiacentral|--
australiasoutheast|Australia Southeast|APAC|Australia|Victoria|-37.8136,144.9631|australiaeast|--
jioindiacentral|Jio India Central|APAC|India|Nagpur|21.1466,79.0888|jioindiawest|--
koreasouth|Korea South|APAC|Korea|Busan|35.1796,129.0756|koreacentral|--
southindia|South India|APAC|India|Chennai|12.9822,80.1636|centralindia|--
westindia|West India|APAC|India|Mumbai|19.088,72.868|southindia|--
canadaeast|Canada East|CA|Canada|Quebec|46.817,-71.217|canadacentral|--
francesouth|France South|EU|France|Marseille|43.8345,2.1972|francecentral|--
germanynorth|Germany North|EU|Germany|Berlin|53.0736,8.8064|germanywestcentral|--
norwaywest|Norway West|EU|Norway|Norway|58.9699,5.7331|norwayeast|--
switzerlandwest|Switzerland West|EU|Switzerland|Geneva|46.2043,6.1431|switzerlandnorth|--
ukwest|UK West|EU|United Kingdom|Cardiff|53.427,-3.084|uksouth|--
uaecentral|UAE Central|ME|UAE|Abu Dhabi|24.4666,54.3666|uaenorth|--
brazilsoutheast|Brazil Southeast|SA|Brazil|Rio|-22.9027,-43.2075|brazilsouth|--
swedensouth|Sweden South|EU|Sweden|Malmo|55.6058,13.0007|swedencentral|--
"""


@dataclass(frozen=True)
class Region:
    """One physical region as the locations list describes it."""

    name: str
    display: str
    group: str
    geography: str
    physical_location: str
    latitude: str
    longitude: str
    paired: tuple[str, ...]
    recommended: bool
    zones: bool


def _parse(line: str) -> Region:
    name, display, group, geography, where, coordinates, paired, flags = line.split("|")
    latitude, _, longitude = coordinates.partition(",")
    return Region(
        name=name,
        display=display,
        group=_GROUPS[group],
        geography=geography,
        physical_location="" if where == "-" else where,
        latitude="" if coordinates == "-" else latitude,
        longitude="" if coordinates == "-" else longitude,
        paired=() if paired == "-" else tuple(paired.split(",")),
        recommended="R" in flags,
        zones="Z" in flags,
    )


#: The public cloud's physical regions, in the service's order.
REGIONS: Final[tuple[Region, ...]] = tuple(_parse(line) for line in _TABLE.strip().splitlines())

#: Geography-wide names of the locations list (``regionType: Logical``): never a location.
LOGICAL_REGIONS: Final[tuple[tuple[str, str], ...]] = (
    ("asia", "Asia"),
    ("asiapacific", "Asia Pacific"),
    ("australia", "Australia"),
    ("brazil", "Brazil"),
    ("canada", "Canada"),
    ("europe", "Europe"),
    ("france", "France"),
    ("germany", "Germany"),
    ("global", "Global"),
    ("india", "India"),
    ("japan", "Japan"),
    ("korea", "Korea"),
    ("uk", "United Kingdom"),
    ("unitedstates", "United States"),
)

_BY_NAME: Final[dict[str, Region]] = {r.name: r for r in REGIONS}
#: Programmatic name -> display name (``eastus2`` -> ``East US 2``), physical regions only.
DISPLAY_NAMES: Final[dict[str, str]] = {r.name: r.display for r in REGIONS}


def region_key(name: str) -> str:
    """The programmatic name for either form: ``"East US 2"`` and ``"eastus2"`` -> ``"eastus2"``."""
    return name.replace(" ", "").lower()


def display_name(name: str) -> str:
    """The display name the service returns in ``targetRegions[].name``; unknown names kept."""
    return DISPLAY_NAMES.get(region_key(name), name)


def is_known(name: str) -> bool:
    """True for a public physical region, in either form (``westeurope``, ``West Europe``)."""
    return region_key(name) in _BY_NAME


def closest(name: str) -> str | None:
    """The region a misspelt name most likely meant (``westeurop`` -> ``westeurope``)."""
    found = difflib.get_close_matches(region_key(name), list(_BY_NAME), n=1, cutoff=0.75)
    return found[0] if found else None


def available_names() -> str:
    """The region list ARM quotes in ``LocationNotAvailableForResourceType``."""
    return ",".join(r.name for r in REGIONS)


def _location(subscription: str, region: Region) -> JsonObject:
    base = f"/subscriptions/{subscription}/locations"
    body: JsonObject = {
        "id": f"{base}/{region.name}",
        "name": region.name,
        "type": "Region",
        "displayName": region.display,
        "regionalDisplayName": f"({region.group}) {region.display}",
        "metadata": {
            "regionType": "Physical",
            "regionCategory": "Recommended" if region.recommended else "Other",
            "geography": region.geography,
            "geographyGroup": region.group,
            "longitude": region.longitude,
            "latitude": region.latitude,
            "physicalLocation": region.physical_location,
            "pairedRegion": [{"name": p, "id": f"{base}/{p}"} for p in region.paired],
        },
    }
    if region.zones:
        body["availabilityZoneMappings"] = [
            {"logicalZone": str(zone), "physicalZone": f"{region.name}-az{zone}"}
            for zone in (1, 2, 3)
        ]
    return body


def locations_body(subscription: str) -> JsonObject:
    """``GET /subscriptions/{id}/locations``: every physical, then every logical region."""
    value = [_location(subscription, r) for r in REGIONS]
    value += [
        {
            "id": f"/subscriptions/{subscription}/locations/{name}",
            "name": name,
            "type": "Region",
            "displayName": display,
            "regionalDisplayName": display,
            "metadata": {"regionType": "Logical", "regionCategory": "Other"},
        }
        for name, display in LOGICAL_REGIONS
    ]
    return {"value": value}
