/** @odoo-module */
/**
 * A financial manager pushes the documents of one payment type ("30 Days") to
 * Sage: Documents to push > Push all to Sage > Chosen payment types > tick
 * 30 Days > Push Now; Odoo opens the queued batch. The background runner is run
 * by test_tours.py, then "sage_push_all_done_tour" reads the outcome.
 */
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("sage_push_all_tour", {
    steps: () => [
        {
            content: "Documents to push lists the unsent invoices",
            trigger: ".o_list_view .o_data_row",
        },
        {
            content: "Open Push all to Sage",
            trigger: ".o_control_panel button[name=action_sage_open_push_all]",
            run: "click",
        },
        {
            content: "The wizard previews the payment types",
            trigger: ".modal .o_field_widget[name=type_line_ids] .o_data_row:contains(30 Days)",
        },
        {
            content: "Push only chosen payment types",
            trigger: ".modal .o_field_widget[name=mode] input[data-value=types]",
            run: "click",
        },
        {
            content: "Edit the 30 Days row",
            trigger: ".modal .o_data_row:contains(30 Days) td[name=selected]",
            run: "click",
        },
        {
            content: "Tick 30 Days",
            trigger: ".modal .o_data_row.o_selected_row:contains(30 Days) td[name=selected] input:enabled",
            run() {
                if (!this.anchor.checked) {
                    this.anchor.click();
                }
            },
        },
        {
            content: "The wizard counts the two 30 Days invoices",
            trigger: ".modal .o_field_widget[name=push_count]:contains(2)",
        },
        {
            content: "Push Now",
            trigger: ".modal .modal-footer button[name=action_push_now]",
            run: "click",
        },
        {
            content: "Odoo says the invoices are being pushed",
            trigger: ".o_notification:contains(2 invoices are being pushed to Sage)",
        },
        {
            content: "…and opens the batch, queued for the background runner",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Queued)",
        },
        {
            content: "The batch holds the two documents",
            trigger: ".o_form_view .o_field_widget[name=line_ids] .o_data_row:nth-child(2):contains(30 Days)",
        },
    ],
});

registry.category("web_tour.tours").add("sage_push_all_done_tour", {
    steps: () => [
        {
            content: "The completion notice reaches the manager",
            trigger: ".o_notification:contains(Invoice push complete):contains(2 of 2 document(s) sent to Sage, 0 not sent)",
        },
        {
            content: "The batch is done",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Done)",
        },
        {
            content: "Every document of the batch shows its Sage number",
            trigger: ".o_form_view .o_field_widget[name=line_ids] .o_data_row:nth-child(2) td[name=sage_number]:contains(SI-)",
        },
        {
            content: "…and none failed",
            trigger: ".o_form_view .o_field_widget[name=failed_count]:contains(0)",
        },
    ],
});
