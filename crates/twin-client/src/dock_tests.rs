//! Tests of the docked panels: the layout file, `Tab`, stacking and the free view.

use super::*;

#[test]
fn layout_text_round_trips_and_damage_is_named() {
    let mut layout = PanelLayout::default();
    layout.places.insert(PanelId::Kpis, PanelPlace { edge: Edge::Left, open: false });
    let text = layout.to_text();
    assert!(text.contains("kpis left collapsed"), "{text}");
    assert_eq!(PanelLayout::parse(&text), Ok(layout.clone()));
    // Panels the file does not name keep their defaults.
    let partial = PanelLayout::parse("# comment\n\nstations right open\n").expect("valid");
    assert_eq!(partial.place(PanelId::Stations), PanelPlace { edge: Edge::Right, open: true });
    assert_eq!(partial.place(PanelId::Twin), PanelId::Twin.default_place());
    let e = PanelLayout::parse("twin left open\nkpis top open\n").expect_err("bad edge");
    assert!(e.contains("line 2") && e.contains("\"top\""), "{e}");
    assert!(PanelLayout::parse("nosuch left open").expect_err("panel").contains("unknown panel"));
    assert!(PanelLayout::parse("twin left").expect_err("short").contains("line 1"));
    assert!(PanelLayout::parse("twin left shut").expect_err("state").contains("\"shut\""));
}

fn app_with(docks: Docks) -> App {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .init_resource::<ButtonInput<KeyCode>>()
        .insert_resource(docks)
        .add_systems(Update, (toggle_panels, save_layout.run_if(layout_dirty)));
    app
}

#[test]
fn changes_are_saved_and_read_back_by_the_next_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("nested").join("panels.txt");
    let (docks, warning) = Docks::persistent(file.clone());
    assert_eq!(warning, None, "a missing file is a first run, not damage");
    assert_eq!(docks.layout, PanelLayout::default());
    let mut app = app_with(docks);
    app.update();
    assert!(!file.exists(), "nothing changed, nothing written");
    app.world_mut()
        .resource_mut::<Docks>()
        .set_place(PanelId::Bottlenecks, PanelPlace { edge: Edge::Bottom, open: false });
    app.update();
    let text = std::fs::read_to_string(&file).expect("layout written");
    assert!(text.contains("bottlenecks bottom collapsed"), "{text}");

    let (next_run, warning) = Docks::persistent(file.clone());
    assert_eq!(warning, None);
    assert_eq!(next_run.place(PanelId::Bottlenecks), PanelPlace { edge: Edge::Bottom, open: false });
    assert_eq!(next_run.place(PanelId::Kpis), PanelId::Kpis.default_place());
}

#[test]
fn a_damaged_file_is_ignored_with_a_warning() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("panels.txt");
    std::fs::write(&file, "kpis right open\n\u{0}garbage here now\n").expect("write");
    let (docks, warning) = Docks::persistent(file.clone());
    let warning = warning.expect("a warning");
    assert!(warning.contains("panels.txt") && warning.contains("line 2"), "{warning}");
    assert_eq!(docks.layout, PanelLayout::default(), "defaults instead");
    // The damaged file stays until the user changes the layout.
    assert!(std::fs::read_to_string(&file).expect("kept").contains("garbage"));
}

#[test]
fn tab_hides_and_shows_every_panel() {
    let mut app = app_with(Docks::new(PanelLayout::default()));
    app.update();
    assert!(!app.world().resource::<Docks>().hidden);
    app.world_mut().resource_mut::<ButtonInput<KeyCode>>().press(TOGGLE_PANELS_KEY);
    app.update();
    assert!(app.world().resource::<Docks>().hidden);
    let mut keys = app.world_mut().resource_mut::<ButtonInput<KeyCode>>();
    keys.release(TOGGLE_PANELS_KEY);
    keys.clear();
    keys.press(TOGGLE_PANELS_KEY);
    app.update();
    assert!(!app.world().resource::<Docks>().hidden);
}

/// Draws every panel with a body of `body` through a real egui context for a few
/// frames and returns where each was drawn in the last one.
fn lay_out(docks: &mut Docks, screen: Vec2, body: Vec2) -> BTreeMap<PanelId, Rect> {
    lay_out_with(docks, screen, |_| Some(body.y))
}

/// Like `lay_out`, with a body height per panel; `None`: the panel is not drawn.
fn lay_out_with(
    docks: &mut Docks,
    screen: Vec2,
    height: impl Fn(PanelId) -> Option<f32>,
) -> BTreeMap<PanelId, Rect> {
    let ctx = egui::Context::default();
    for _ in 0..4 {
        let input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, screen)),
            ..Default::default()
        };
        docks.start_frame();
        ctx.begin_pass(input);
        for id in PanelId::ALL {
            let Some(h) = height(id) else { continue };
            docks.show(&ctx, id, id.key(), |ui| {
                // A panel that scrolls itself keeps to the height it is given.
                let h = if id.scrolls_itself() { h.min(ui.available_height()) } else { h };
                ui.allocate_exact_size(Vec2::new(100.0, h), egui::Sense::hover());
            });
        }
        ctx.end_pass().textures_delta.clear();
    }
    docks.rects.clone()
}

#[test]
fn panels_stack_along_their_edges_without_overlapping() {
    let mut docks = Docks::new(PanelLayout::default());
    let screen = Vec2::new(1280.0, 720.0);
    let rects = lay_out(&mut docks, screen, Vec2::new(100.0, 80.0));
    let screen_rect = Rect::from_min_size(Pos2::ZERO, screen);
    for (id, r) in &rects {
        assert!(screen_rect.expand(1.0).contains_rect(*r), "{id:?} {r:?} leaves the window");
        for (other, o) in &rects {
            if id < other {
                assert!(!r.shrink(1.0).intersects(o.shrink(1.0)), "{id:?} {r:?} overlaps {other:?} {o:?}");
            }
        }
    }
    let twin = rects[&PanelId::Twin];
    let controls = rects[&PanelId::Controls];
    assert!(twin.left() < 20.0 && controls.top() > twin.bottom(), "left column, top down");
    assert!(rects[&PanelId::Kpis].right() > 1260.0, "right column");
    assert!(rects[&PanelId::Timeline].bottom() > 700.0, "bottom row");
    // Collapsed panels keep only their title: less than a tenth of the window.
    let collapsed = rects[&PanelId::HeatMap];
    assert!(collapsed.height() < 40.0, "{collapsed:?}");
    // In the default layout the panels leave most of a 720p window to the view.
    let covered: f32 = rects.values().map(|r| r.area()).sum();
    let share = covered / (screen.x * screen.y);
    assert!(share < 0.45, "panels cover {:.0} % of the window", share * 100.0);
}

fn assert_apart(rects: &BTreeMap<PanelId, Rect>, screen: Vec2) {
    let screen_rect = Rect::from_min_size(Pos2::ZERO, screen);
    for (id, r) in rects {
        assert!(screen_rect.expand(1.0).contains_rect(*r), "{id:?} {r:?} leaves the window");
        for (other, o) in rects {
            if id < other {
                assert!(!r.shrink(1.0).intersects(o.shrink(1.0)), "{id:?} {r:?} overlaps {other:?} {o:?}");
            }
        }
    }
}

#[test]
fn the_default_layout_fits_a_720p_window_with_real_panel_sizes() {
    // Body heights of the training line's panels as the render test draws them.
    let height = |id: PanelId| match id {
        PanelId::Twin => Some(170.0),
        PanelId::Controls => Some(200.0),
        PanelId::Kpis => Some(370.0),
        PanelId::Bottlenecks => Some(60.0),
        PanelId::Stations => Some(210.0),
        PanelId::Timeline => Some(80.0),
        PanelId::HeatMap | PanelId::Alarms | PanelId::Forecast => Some(100.0),
        PanelId::Selection | PanelId::Programme => None,
    };
    for screen in [Vec2::new(1280.0, 720.0), Vec2::new(1920.0, 1080.0)] {
        let mut docks = Docks::new(PanelLayout::default());
        let rects = lay_out_with(&mut docks, screen, height);
        assert_apart(&rects, screen);
        // The free view lies between the columns, above the timeline, and no panel
        // reaches into it; it keeps at least half of the window's width.
        let free = docks.free_rect(Rect::from_min_size(Pos2::ZERO, screen));
        for (id, r) in &rects {
            assert!(!r.shrink(1.0).intersects(free), "{id:?} {r:?} covers the free view {free:?}");
        }
        assert!(free.width() > screen.x * 0.5 && free.height() > screen.y * 0.7, "{screen:?}: {free:?}");
        docks.hidden = true;
        assert_eq!(docks.free_rect(Rect::from_min_size(Pos2::ZERO, screen)).size(), screen, "Tab");
    }
}

#[test]
fn a_full_column_gives_its_last_panel_only_the_height_left() {
    let mut layout = PanelLayout::default();
    for id in [PanelId::Kpis, PanelId::Bottlenecks, PanelId::Alarms] {
        layout.places.insert(id, PanelPlace { edge: Edge::Right, open: true });
    }
    let mut docks = Docks::new(layout);
    let height = |id: PanelId| match id {
        PanelId::Kpis | PanelId::Bottlenecks => Some(250.0),
        PanelId::Alarms => Some(300.0),
        _ => None,
    };
    let rects = lay_out_with(&mut docks, Vec2::new(1280.0, 720.0), height);
    let alarms = rects[&PanelId::Alarms];
    assert!(alarms.bottom() <= 720.0 + 1.0, "{alarms:?} runs off the window");
    assert!(alarms.top() > rects[&PanelId::Bottlenecks].bottom());
    assert!(alarms.height() < 200.0, "its 300 points scroll in what is left: {alarms:?}");
}
