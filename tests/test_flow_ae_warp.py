"""Warp conventions: zero flow is identity, a known flow shifts by the right number of pixels."""

from __future__ import annotations

import pytest
import torch

from dabfusion.flow_ae.warp import (flow_to_grid, flow_to_pixels, grid_to_flow, identity_grid,
                                    pixels_to_flow, warp)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_zero_flow_full_visibility_is_exact_identity(size):
    z = torch.randn(2, 5, size, size)
    flow = torch.zeros(2, 2, size, size)
    occ = torch.ones(2, 1, size, size)
    assert torch.equal(warp(z, flow, occ), z)
    assert torch.equal(warp(z.to(torch.bfloat16), flow, occ), z.to(torch.bfloat16))


def test_zero_flow_identity_for_non_power_of_two_sizes():
    z = torch.randn(1, 3, 12, 20)
    out = warp(z, torch.zeros(1, 2, 12, 20))
    torch.testing.assert_close(out, z, atol=1e-5, rtol=0)


@pytest.mark.parametrize("dx,dy", [(1, 0), (0, 2), (-3, 1), (2, -2)])
def test_integer_translation_moves_pattern_by_that_many_pixels(dx, dy):
    """Backward flow: output(y, x) = z(y + dy, x + dx); outside reads zeros."""
    h = w = 16
    z = torch.randn(1, 4, h, w)
    px = torch.tensor([float(dx), float(dy)]).view(1, 2, 1, 1).expand(1, 2, h, w)
    out = warp(z, pixels_to_flow(px))
    for y in range(h):
        for x in range(w):
            sy, sx = y + dy, x + dx
            want = z[0, :, sy, sx] if 0 <= sy < h and 0 <= sx < w else torch.zeros(4)
            assert torch.equal(out[0, :, y, x], want), (y, x)


def test_half_pixel_shift_averages_neighbours_and_occlusion_scales():
    z = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 1, 8, 8).contiguous()
    flow = pixels_to_flow(torch.tensor([0.5, 0.0]).view(1, 2, 1, 1).expand(1, 2, 8, 8))
    occ = torch.full((1, 1, 8, 8), 0.5)
    out = warp(z, flow, occ)
    torch.testing.assert_close(out[0, 0, :, :7], 0.5 * (z[0, 0, :, :7] + 0.5))


def test_flow_units_and_grid_round_trip():
    px = torch.randn(2, 2, 8, 16)
    torch.testing.assert_close(flow_to_pixels(pixels_to_flow(px)), px)
    flow = torch.randn(2, 2, 8, 16) * 0.1
    torch.testing.assert_close(grid_to_flow(flow_to_grid(flow)), flow)
    g = identity_grid(4, 4)
    assert g.shape == (4, 4, 2)
    assert torch.equal(g[0, :, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))  # x first, pixel centres


def test_flow_at_other_resolution_is_resized_to_the_latent():
    z = torch.randn(1, 2, 16, 16)
    out = warp(z, torch.zeros(1, 2, 32, 32), torch.ones(1, 1, 32, 32))
    assert torch.equal(out, z)
    with pytest.raises(ValueError, match="flow"):
        warp(z, torch.zeros(1, 3, 16, 16))
