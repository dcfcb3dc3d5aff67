"""Azure region names: programmatic (``eastus2``) and display (``East US 2``) forms."""

from __future__ import annotations

DISPLAY_NAMES: dict[str, str] = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus": "West US",
    "westus2": "West US 2",
    "westus3": "West US 3",
    "centralus": "Central US",
    "northcentralus": "North Central US",
    "southcentralus": "South Central US",
    "westcentralus": "West Central US",
    "canadacentral": "Canada Central",
    "canadaeast": "Canada East",
    "brazilsouth": "Brazil South",
    "northeurope": "North Europe",
    "westeurope": "West Europe",
    "uksouth": "UK South",
    "ukwest": "UK West",
    "francecentral": "France Central",
    "germanywestcentral": "Germany West Central",
    "swedencentral": "Sweden Central",
    "switzerlandnorth": "Switzerland North",
    "norwayeast": "Norway East",
    "polandcentral": "Poland Central",
    "italynorth": "Italy North",
    "spaincentral": "Spain Central",
    "eastasia": "East Asia",
    "southeastasia": "Southeast Asia",
    "japaneast": "Japan East",
    "japanwest": "Japan West",
    "koreacentral": "Korea Central",
    "centralindia": "Central India",
    "southindia": "South India",
    "australiaeast": "Australia East",
    "australiasoutheast": "Australia Southeast",
    "uaenorth": "UAE North",
    "southafricanorth": "South Africa North",
    "qatarcentral": "Qatar Central",
    "israelcentral": "Israel Central",
    "mexicocentral": "Mexico Central",
}


def region_key(name: str) -> str:
    """The programmatic name for either form: ``"East US 2"`` and ``"eastus2"`` -> ``"eastus2"``."""
    return name.replace(" ", "").lower()


def display_name(name: str) -> str:
    """The display name the service returns in ``targetRegions[].name``; unknown names kept."""
    return DISPLAY_NAMES.get(region_key(name), name)


def is_known(name: str) -> bool:
    return region_key(name) in DISPLAY_NAMES
