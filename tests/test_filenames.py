from datetime import datetime

import pytest

from s5p_lockdown.filenames import FileNameError, ProductName

REAL = "S5P_OFFL_L2__NO2____20200303T013547_20200303T031717_12367_01_010302_20200306T053815"


def test_parse_real_name():
    name = ProductName.parse(REAL + ".nc")
    assert name.stream == "OFFL"
    assert name.product == "L2__NO2___"
    assert name.is_no2
    assert name.start == datetime(2020, 3, 3, 1, 35, 47)
    assert name.end == datetime(2020, 3, 3, 3, 17, 17)
    assert name.orbit == 12367
    assert name.collection == 1
    assert name.processor_version == "1.3.2"
    assert name.production == datetime(2020, 3, 6, 5, 38, 15)


def test_round_trip_and_length():
    name = ProductName.parse("/some/dir/" + REAL + ".nc")
    assert name.stem == REAL
    assert len(name.stem) == 83
    assert name.filename == REAL + ".nc"
    assert ProductName.parse(name.with_(processor_version="2.4.0").stem).processor_code == "020400"


@pytest.mark.parametrize("stream", ["NRTI", "RPRO", "PAL_"])
def test_streams(stream):
    assert ProductName.parse(REAL.replace("OFFL", stream)).stream == stream


def test_other_product_parses_but_is_not_no2():
    name = ProductName.parse(REAL.replace("L2__NO2___", "L2__O3____"))
    assert name.product == "L2__O3____"
    assert not name.is_no2


@pytest.mark.parametrize(
    "bad",
    ["notes.txt", REAL.replace("OFFL", "XXXX"), REAL[:-1], REAL.replace("20200303T013547", "20201303T013547")],
)
def test_bad_names(bad):
    with pytest.raises(FileNameError, match="product name|invalid date"):
        ProductName.parse(bad)
